/**
 * The dashboard's only way to the server: the admin API under `/api/`,
 * with the session's bearer token. Every failure becomes an `ApiFailure`
 * whose message is one line a person can read (the API's own message when
 * it sent one), so every view can show it.
 */
import type * as T from "./types.js"

/** A request to the API that failed: an error answer, or no answer at all. */
export class ApiFailure extends Error {
  constructor(
    /** The HTTP status; 0 when the server did not answer. */
    readonly status: number,
    /** The API's error tag (`NotFound`, `Forbidden`, ...), or `NetworkError`. */
    readonly tag: string,
    message: string
  ) {
    super(message)
    this.name = "ApiFailure"
  }
}

type Listener = (failure: ApiFailure) => void
const unauthorizedListeners = new Set<Listener>()

/** Calls `listener` whenever the server refuses the session's token (401). */
export const onUnauthorized = (listener: Listener): (() => void) => {
  unauthorizedListeners.add(listener)
  return () => unauthorizedListeners.delete(listener)
}

let token: string | undefined

/** Sets the token the requests carry. */
export const setToken = (value: string | undefined): void => {
  token = value
}

const failureOf = async (response: Response, what: string): Promise<ApiFailure> => {
  let tag = `HTTP ${response.status}`
  let message = response.statusText || "error"
  try {
    const body = await response.json() as { error?: unknown; message?: unknown }
    if (typeof body.error === "string") tag = body.error
    if (typeof body.message === "string") message = body.message
  } catch {
    // Not an API error body (a proxy's page, say): the status says enough.
  }
  return new ApiFailure(response.status, tag, `${what} failed: ${message} (${response.status} ${tag})`)
}

const headers = (extra: Record<string, string> = {}): Record<string, string> =>
  token === undefined ? extra : { ...extra, authorization: `Bearer ${token}` }

const request = async <A>(method: string, path: string, body?: unknown, what = `${method} ${path}`): Promise<A> => {
  let response: Response
  try {
    response = await fetch(path, {
      method,
      headers: headers(body === undefined ? {} : { "content-type": "application/json" }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      credentials: "omit",
      cache: "no-store"
    })
  } catch {
    throw new ApiFailure(0, "NetworkError", `${what} failed: the server did not answer`)
  }
  if (!response.ok) {
    const failure = await failureOf(response, what)
    if (response.status === 401) for (const listener of unauthorizedListeners) listener(failure)
    throw failure
  }
  if (response.status === 204) return undefined as A
  const text = await response.text()
  return (text === "" ? undefined : JSON.parse(text)) as A
}

const enc = encodeURIComponent
const appPath = (app: string) => `/api/apps/${enc(app)}`
const query = (params: Record<string, string | number | undefined>): string => {
  const entries = Object.entries(params).filter((entry): entry is [string, string | number] =>
    entry[1] !== undefined && entry[1] !== ""
  )
  return entries.length === 0 ? "" : `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)])).toString()}`
}

/** What the instance list can be asked for. */
export interface InstanceQuery {
  readonly group?: string | undefined
  readonly status?: T.Status | undefined
  readonly version?: string | undefined
  readonly search?: string | undefined
  readonly sort?: string | undefined
  readonly order?: "asc" | "desc" | undefined
  readonly page?: number | undefined
  readonly perPage?: number | undefined
}

/** A policy change: any policy field; `null` clears the optional ones. */
export type PolicyPatch = {
  readonly [K in keyof T.Policy]?: T.Policy[K] | (K extends "maxConcurrentUpdates" | "failureBrake" ? null : never)
}

/** The admin API, one function per endpoint the dashboard uses. */
export const api = {
  session: () => request<T.Session>("GET", "/api/session", undefined, "Signing in"),
  apps: () => request<Array<T.Application>>("GET", "/api/apps", undefined, "Loading the applications"),
  app: (app: string) => request<T.Application>("GET", appPath(app), undefined, "Loading the application"),
  createApp: (body: { id: string; name: string; description?: string }) =>
    request<T.Application>("POST", "/api/apps", body, "Creating the application"),
  groups: (app: string) => request<Array<T.Group>>("GET", `${appPath(app)}/groups`, undefined, "Loading the groups"),
  group: (app: string, name: string) => request<T.Group>("GET", `${appPath(app)}/groups/${enc(name)}`, undefined, "Loading the group"),
  createGroup: (app: string, body: { name: string; track?: string; channel: string; description?: string; policy?: PolicyPatch }) =>
    request<T.Group>("POST", `${appPath(app)}/groups`, body, "Creating the group"),
  updateGroup: (app: string, name: string, body: { policy?: PolicyPatch; description?: string; channel?: string; track?: string }) =>
    request<T.Group>("PATCH", `${appPath(app)}/groups/${enc(name)}`, body, "Saving the group"),
  pause: (app: string, name: string, reason?: string) =>
    request<T.Group>(
      "POST",
      `${appPath(app)}/groups/${enc(name)}/pause`,
      reason === undefined || reason === "" ? undefined : { reason },
      "Pausing the rollout"
    ),
  resume: (app: string, name: string) =>
    request<T.Group>("POST", `${appPath(app)}/groups/${enc(name)}/resume`, undefined, "Resuming the rollout"),
  groupStatus: (app: string, name: string) => request<T.GroupStatus>("GET", `${appPath(app)}/groups/${enc(name)}/status`, undefined, "Loading the rollout status"),
  timeline: (app: string, name: string, window: T.TimelineWindow) =>
    request<T.Timeline>(
      "GET",
      `${appPath(app)}/groups/${enc(name)}/timeline${query({ window })}`,
      undefined,
      "Loading the timeline"
    ),
  instances: (app: string, q: InstanceQuery) =>
    request<T.InstancePage>("GET", `${appPath(app)}/instances${query({ ...q })}`, undefined, "Loading the instances"),
  instance: (app: string, machineId: string) => request<T.InstanceDetail>("GET", `${appPath(app)}/instances/${enc(machineId)}`, undefined, "Loading the instance"),
  channels: (app: string) => request<Array<T.Channel>>("GET", `${appPath(app)}/channels`, undefined, "Loading the channels"),
  createChannel: (app: string, body: { name: string; arch: T.Arch; package?: string }) =>
    request<T.Channel>("POST", `${appPath(app)}/channels`, body, "Creating the channel"),
  pointChannel: (app: string, channel: T.Channel, version: string | null) =>
    request<T.Channel>(
      "PATCH",
      `${appPath(app)}/channels/${enc(channel.name)}${query({ arch: channel.arch })}`,
      { package: version },
      "Moving the channel"
    ),
  setFloor: (app: string, channel: T.Channel, version: string, reason: string) =>
    request<T.Channel>(
      "PUT",
      `${appPath(app)}/channels/${enc(channel.name)}/floors/${enc(version)}${query({ arch: channel.arch })}`,
      { reason },
      "Adding the floor"
    ),
  removeFloor: (app: string, channel: T.Channel, version: string) =>
    request<T.Channel>(
      "DELETE",
      `${appPath(app)}/channels/${enc(channel.name)}/floors/${enc(version)}${query({ arch: channel.arch })}`,
      undefined,
      "Removing the floor"
    ),
  block: (app: string, channel: T.Channel, version: string) =>
    request<T.Channel>(
      "PUT",
      `${appPath(app)}/channels/${enc(channel.name)}/blocklist/${enc(version)}${query({ arch: channel.arch })}`,
      undefined,
      "Blocking the version"
    ),
  unblock: (app: string, channel: T.Channel, version: string) =>
    request<T.Channel>(
      "DELETE",
      `${appPath(app)}/channels/${enc(channel.name)}/blocklist/${enc(version)}${query({ arch: channel.arch })}`,
      undefined,
      "Unblocking the version"
    ),
  packages: (app: string) => request<Array<T.Package>>("GET", `${appPath(app)}/packages`, undefined, "Loading the packages"),
  activity: (before?: number) => request<Array<T.Activity>>("GET", `/api/activity${query({ limit: 50, before })}`, undefined, "Loading the activity")
}

/** Progress of an upload: bytes sent of the total. */
export type UploadProgress = (sent: number, total: number) => void

/**
 * Uploads a payload file as a hosted package, reporting progress as the
 * bytes leave (fetch cannot tell upload progress; XMLHttpRequest can).
 */
export const uploadPackage = (
  app: string,
  input: { readonly version: string; readonly arch: T.Arch; readonly name: string; readonly file: Blob },
  progress: UploadProgress
): Promise<T.Package> =>
  new Promise((resolve, reject) => {
    const what = "Uploading the package"
    const xhr = new XMLHttpRequest()
    xhr.open("PUT", `${appPath(app)}/packages/${enc(input.version)}${query({ arch: input.arch, name: input.name })}`)
    for (const [key, value] of Object.entries(headers({ "content-type": "application/octet-stream" }))) {
      xhr.setRequestHeader(key, value)
    }
    xhr.upload.onprogress = (event) => progress(event.loaded, event.lengthComputable ? event.total : input.file.size)
    xhr.onerror = () => reject(new ApiFailure(0, "NetworkError", `${what} failed: the server did not answer`))
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText) as T.Package)
        } catch {
          reject(new ApiFailure(xhr.status, "InvalidResponse", `${what} failed: the answer is not JSON`))
        }
        return
      }
      let tag = `HTTP ${xhr.status}`
      let message = xhr.statusText || "error"
      try {
        const body = JSON.parse(xhr.responseText) as { error?: unknown; message?: unknown }
        if (typeof body.error === "string") tag = body.error
        if (typeof body.message === "string") message = body.message
      } catch {
        // The status says enough.
      }
      const failure = new ApiFailure(xhr.status, tag, `${what} failed: ${message} (${xhr.status} ${tag})`)
      if (xhr.status === 401) for (const listener of unauthorizedListeners) listener(failure)
      reject(failure)
    }
    xhr.send(input.file)
  })
