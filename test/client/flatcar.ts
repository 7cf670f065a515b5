/** A Flatcar-like client, as update_engine on a Flatcar machine presents itself, for request tests. */
import { type AppClient, type OmahaClient, Request } from "effect-omaha"

/** The machine id and braced boot id of the machine. */
export const machineId = "0123456789abcdef0123456789abcdef"
export const bootId = "{7d52a1cc-7066-40f0-91c7-7cb6a871bfde}"

/** update_engine's client settings: its version, the machine's ids, Flatcar's `<os>`. */
export const clientOptions: Partial<OmahaClient.Options> = {
  userId: machineId,
  sessionId: bootId,
  clientVersion: "update_engine-0.4.10",
  isMachine: true,
  os: new Request.Os({ platform: "CoreOS", version: "Chateau", sp: "3815.2.0_x86_64" })
}

/** Flatcar's app with every update_engine extension set. */
export const appOptions = {
  appId: "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}",
  version: "3815.2.0",
  track: "stable",
  board: "amd64-usr",
  oem: "ami",
  oemVersion: "2.0.1",
  alephVersion: "3510.2.0",
  machineAlias: "worker-7",
  lang: "en-US",
  hardwareClass: "",
  deltaOkay: false
} as const satisfies AppClient.Options

/** The root attributes such a client sends with an update check from the scheduler. */
export const expectedRoot = {
  protocol: "3.0",
  version: "update_engine-0.4.10",
  updaterVersion: "update_engine-0.4.10",
  installSource: "scheduler",
  isMachine: true,
  userId: machineId,
  sessionId: bootId
} as const

/** The app element it sends with an update check: its settings, the ids copied in, ping and updatecheck. */
export const expectedApp = {
  ...appOptions,
  machineId,
  bootId,
  ping: new Request.PingRequest({ active: 1 }),
  updateCheck: new Request.UpdateRequest({})
} as const
