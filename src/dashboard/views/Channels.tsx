/**
 * An application's channels (the package each points to, its floors and
 * blocklist) and packages, with uploads that show their progress. Admins
 * change them here; viewers see the same without the controls.
 */
import { useState } from "preact/hooks"
import { api, uploadPackage } from "../api.js"
import { Ago, ErrorMessage, Loading, Panel } from "../components.js"
import * as Format from "../format.js"
import { useAction, useLoad } from "../hooks.js"
import { href } from "../route.js"
import { useSession } from "../session.js"
import type { Arch, Channel, Package } from "../types.js"
import { AppFrame } from "./common.js"

const arches: ReadonlyArray<Arch> = ["amd64", "arm64", "x86", "all"]

const versionsFor = (packages: ReadonlyArray<Package>, arch: Arch): Array<string> =>
  [...new Set(packages.filter((p) => arch === "all" || p.arch === arch || p.arch === "all").map((p) => p.version))]
    .sort((a, b) => Format.compareVersions(b, a))

const ChannelCard = ({ app, channel, packages, onChange }: {
  app: string
  channel: Channel
  packages: ReadonlyArray<Package>
  onChange: () => void
}) => {
  const { canEdit } = useSession()
  const action = useAction()
  const versions = versionsFor(packages, channel.arch)
  const [target, setTarget] = useState(channel.package ?? "")
  const [floor, setFloor] = useState("")
  const [reason, setReason] = useState("")
  const [block, setBlock] = useState("")
  const write = async (f: () => Promise<unknown>) => {
    if ((await action.run(f)) !== undefined) onChange()
  }
  const floorChoices = versions.filter((v) => v !== channel.package && !channel.floors.some((f) => f.version === v))
  const blockChoices = versions.filter((v) => !channel.blocklist.includes(v))
  const floorVersion = floorChoices.includes(floor) ? floor : floorChoices[0] ?? ""
  const blockVersion = blockChoices.includes(block) ? block : blockChoices[0] ?? ""
  return (
    <article class="channel" data-channel={`${channel.name}/${channel.arch}`}>
      <header>
        <h3>
          {channel.color === "" ? null : <span class="dot" style={{ background: channel.color }} />}
          {channel.name} <span class="muted small">{channel.arch}</span>
        </h3>
        <span class="muted small">
          moved <Ago iso={channel.updatedAt} />
        </span>
      </header>
      <p class="channel-target">
        Points to <strong data-package>{channel.package ?? "no package"}</strong>
      </p>
      {canEdit ? (
        <form class="inline-form" onSubmit={(e) => (e.preventDefault(), write(() => api.pointChannel(app, channel, target === "" ? null : target)))}>
          <label>
            Package
            <select value={target} onChange={(e) => setTarget(e.currentTarget.value)} name="package">
              <option value="">none</option>
              {versions.map((v) => <option key={v} value={v}>{v}</option>)}
            </select>
          </label>
          <button type="submit" disabled={action.busy || target === (channel.package ?? "")}>
            Move channel
          </button>
        </form>
      ) : null}
      <h4>Floors</h4>
      {channel.floors.length === 0 ? <p class="muted small">None: machines go straight to the channel's package.</p> : (
        <ul class="plain">
          {channel.floors.map((f) => (
            <li key={f.version}>
              <span class="mono">{f.version}</span>
              {f.reason === "" ? null : <span class="muted"> {f.reason}</span>}
              {canEdit ? (
                <button type="button" class="link" disabled={action.busy} onClick={() => write(() => api.removeFloor(app, channel, f.version))}>
                  remove
                </button>
              ) : null}
            </li>
          ))}
        </ul>
      )}
      {canEdit && floorChoices.length > 0 ? (
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault()
            void write(() => api.setFloor(app, channel, floorVersion, reason.trim())).then(() => setReason(""))
          }}
        >
          <select value={floorVersion} onChange={(e) => setFloor(e.currentTarget.value)} aria-label="Floor version">
            {floorChoices.map((v) => <option key={v} value={v}>{v}</option>)}
          </select>
          <input placeholder="reason" value={reason} onInput={(e) => setReason(e.currentTarget.value)} aria-label="Floor reason" />
          <button type="submit" disabled={action.busy}>Add floor</button>
        </form>
      ) : null}
      <h4>Blocklist</h4>
      {channel.blocklist.length === 0 ? <p class="muted small">No version is blocked.</p> : (
        <ul class="plain">
          {channel.blocklist.map((v) => (
            <li key={v}>
              <span class="mono">{v}</span>
              {canEdit ? (
                <button type="button" class="link" disabled={action.busy} onClick={() => write(() => api.unblock(app, channel, v))}>
                  unblock
                </button>
              ) : null}
            </li>
          ))}
        </ul>
      )}
      {canEdit && blockChoices.length > 0 ? (
        <form class="inline-form" onSubmit={(e) => (e.preventDefault(), write(() => api.block(app, channel, blockVersion)))}>
          <select value={blockVersion} onChange={(e) => setBlock(e.currentTarget.value)} aria-label="Version to block">
            {blockChoices.map((v) => <option key={v} value={v}>{v}</option>)}
          </select>
          <button type="submit" disabled={action.busy}>Block version</button>
        </form>
      ) : null}
      <ErrorMessage error={action.error} />
    </article>
  )
}

const NewChannel = ({ app, packages, onCreated }: { app: string; packages: ReadonlyArray<Package>; onCreated: () => void }) => {
  const [name, setName] = useState("")
  const [arch, setArch] = useState<Arch>("amd64")
  const [pkg, setPkg] = useState("")
  const action = useAction()
  return (
    <form
      class="inline-form"
      aria-label="New channel"
      onSubmit={async (e) => {
        e.preventDefault()
        const made = await action.run(() => api.createChannel(app, { name: name.trim(), arch, ...(pkg === "" ? {} : { package: pkg }) }))
        if (made !== undefined) {
          setName("")
          onCreated()
        }
      }}
    >
      <label>
        Name
        <input name="channelName" value={name} required onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label>
        Arch
        <select name="arch" value={arch} onChange={(e) => setArch(e.currentTarget.value as Arch)}>
          {arches.map((a) => <option key={a} value={a}>{a}</option>)}
        </select>
      </label>
      <label>
        Package
        <select name="package" value={pkg} onChange={(e) => setPkg(e.currentTarget.value)}>
          <option value="">none</option>
          {versionsFor(packages, arch).map((v) => <option key={v} value={v}>{v}</option>)}
        </select>
      </label>
      <button type="submit" class="primary" disabled={action.busy}>Add channel</button>
      <ErrorMessage error={action.error} />
    </form>
  )
}

const Upload = ({ app, onUploaded }: { app: string; onUploaded: () => void }) => {
  const [file, setFile] = useState<File | undefined>(undefined)
  const [version, setVersion] = useState("")
  const [arch, setArch] = useState<Arch>("amd64")
  const [name, setName] = useState("")
  const [progress, setProgress] = useState<{ sent: number; total: number } | undefined>(undefined)
  const [done, setDone] = useState<Package | undefined>(undefined)
  const action = useAction()
  return (
    <form
      class="grid-form"
      aria-label="Upload a package"
      onSubmit={async (e) => {
        e.preventDefault()
        if (file === undefined) return
        setDone(undefined)
        setProgress({ sent: 0, total: file.size })
        const uploaded = await action.run(() =>
          uploadPackage(app, { version: version.trim(), arch, name: name.trim() || file.name, file }, (sent, total) =>
            setProgress({ sent, total }))
        )
        if (uploaded !== undefined) {
          setDone(uploaded)
          onUploaded()
        } else setProgress(undefined)
      }}
    >
      <label>
        Payload file
        <input
          type="file"
          name="file"
          required
          onChange={(e) => {
            const f = e.currentTarget.files?.[0]
            setFile(f)
            if (f !== undefined && name === "") setName(f.name)
          }}
        />
      </label>
      <label>
        Version
        <input name="version" required placeholder="3815.2.0" value={version} onInput={(e) => setVersion(e.currentTarget.value)} />
      </label>
      <label>
        Arch
        <select name="arch" value={arch} onChange={(e) => setArch(e.currentTarget.value as Arch)}>
          {arches.map((a) => <option key={a} value={a}>{a}</option>)}
        </select>
      </label>
      <label>
        Name in the manifest
        <input name="payloadName" placeholder="update.gz" value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <div class="form-actions">
        <button type="submit" class="primary" disabled={action.busy || file === undefined}>
          {action.busy ? "Uploading…" : "Upload"}
        </button>
      </div>
      {progress === undefined ? null : (
        <div class="upload-progress">
          <progress max={progress.total || 1} value={progress.sent} aria-label="Upload progress" />
          <span class="muted small">
            {Format.bytes(progress.sent)} of {Format.bytes(progress.total)} ({Format.percent(progress.sent, progress.total)})
          </span>
        </div>
      )}
      {done === undefined ? null : (
        <p class="ok" role="status">
          Uploaded {done.version} ({done.arch}), {Format.bytes(done.size)}.
        </p>
      )}
      <ErrorMessage error={action.error} />
    </form>
  )
}

/** The channels and packages page. */
export const ChannelsView = ({ app }: { app: string }) => {
  const { canEdit } = useSession()
  const channels = useLoad(() => api.channels(app), `${app}/channels`, 15000)
  const packages = useLoad(() => api.packages(app), `${app}/packages`, 30000)
  const pkgs = packages.data ?? []
  return (
    <AppFrame app={app} tab="channels" crumbs={[["Channels and packages", href.channels(app)]]}>
      <Panel title="Channels" id="channels">
        <ErrorMessage error={channels.error} onRetry={channels.reload} />
        {channels.data === undefined ? (channels.error === undefined ? <Loading what="channels" /> : null) : (
          channels.data.length === 0 ? <p class="muted">No channels yet.</p> : (
            <div class="channel-grid">
              {channels.data.map((c) => (
                <ChannelCard key={`${c.name}/${c.arch}`} app={app} channel={c} packages={pkgs} onChange={channels.reload} />
              ))}
            </div>
          )
        )}
        {canEdit ? (
          <>
            <h3>New channel</h3>
            <NewChannel app={app} packages={pkgs} onCreated={channels.reload} />
          </>
        ) : null}
      </Panel>
      <Panel title="Packages" id="packages">
        <ErrorMessage error={packages.error} onRetry={packages.reload} />
        {packages.data === undefined ? (packages.error === undefined ? <Loading what="packages" /> : null) : (
          pkgs.length === 0 ? <p class="muted">No packages yet.</p> : (
            <div class="table-wrap">
              <table aria-label="Packages">
                <thead>
                  <tr>
                    <th>Version</th>
                    <th>Arch</th>
                    <th>File</th>
                    <th class="num">Size</th>
                    <th class="wide-only">SHA-256</th>
                    <th class="wide-only">Added</th>
                  </tr>
                </thead>
                <tbody>
                  {[...pkgs].sort((a, b) => Format.compareVersions(b.version, a.version)).map((p) => (
                    <tr key={`${p.version}/${p.arch}`} data-package={p.version}>
                      <td class="mono">{p.version}</td>
                      <td>{p.arch}</td>
                      <td class="file">
                        {p.name}
                        <div class="muted small">{p.url === undefined ? "hosted here" : p.url}</div>
                      </td>
                      <td class="num">{Format.bytes(p.size)}</td>
                      <td class="mono small wide-only" title={p.sha256}>{Format.shortDigest(p.sha256)}</td>
                      <td class="wide-only"><Ago iso={p.createdAt} /></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        )}
        {canEdit ? (
          <>
            <h3>Upload a package</h3>
            <Upload app={app} onUploaded={packages.reload} />
          </>
        ) : null}
      </Panel>
    </AppFrame>
  )
}
