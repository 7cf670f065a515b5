/**
 * The applications and their groups, each group with a bar of its machines
 * by version and one by status; an application's own page adds the form
 * for a new group.
 */
import { useState } from "preact/hooks"
import { api, type PolicyPatch } from "../api.js"
import { ErrorMessage, Legend, Loading, Panel, type Segment, StackedBar, statusSegments } from "../components.js"
import * as Format from "../format.js"
import { useAction, useLoad } from "../hooks.js"
import { go, href } from "../route.js"
import { useSession } from "../session.js"
import { versionColours } from "../status.js"
import type { Application, Group, GroupStatus } from "../types.js"
import { AppFrame } from "./common.js"

/** Bar segments of a group's machines by version, newest first. */
export const versionSegments = (status: GroupStatus): Array<Segment> =>
  status.versions.map((v, i) => ({
    key: v.version,
    label: v.version === "" ? "unknown" : v.version,
    value: v.count,
    colour: versionColours[i % versionColours.length]!
  }))

const GroupRow = ({ app, group }: { app: string; group: Group }) => {
  const status = useLoad(() => api.groupStatus(app, group.name), `${app}/${group.name}`, 5000)
  const s = status.data
  return (
    <li class="group-row" data-group={group.name}>
      <div class="group-row-head">
        <a class="group-name" href={href.group(app, group.name)}>
          {group.name}
        </a>
        <span class="muted small">
          track <code>{group.track}</code> · channel <code>{group.channel}</code>
        </span>
        {group.paused ? <span class="pill warn" title={group.pausedReason}>paused</span> : null}
        {!group.policy.updatesEnabled ? <span class="pill">updates off</span> : null}
        <span class="group-total muted small">{s === undefined ? "" : `${Format.count(s.total)} instances`}</span>
      </div>
      <ErrorMessage error={status.error} onRetry={status.reload} />
      {s === undefined ? (status.error === undefined ? <Loading what="counts" /> : null) : (
        <div class="group-bars">
          <div class="bar-line">
            <span class="bar-label">Versions</span>
            <StackedBar segments={versionSegments(s)} label={`${group.name} by version`} />
          </div>
          <Legend segments={versionSegments(s)} />
          <div class="bar-line">
            <span class="bar-label">Statuses</span>
            <StackedBar segments={statusSegments(s.statuses)} label={`${group.name} by status`} />
          </div>
          <Legend segments={statusSegments(s.statuses)} />
        </div>
      )}
    </li>
  )
}

const GroupList = ({ app }: { app: string }) => {
  const groups = useLoad(() => api.groups(app), app, 10000)
  if (groups.data === undefined) {
    return groups.error === undefined ? <Loading what="groups" /> : <ErrorMessage error={groups.error} onRetry={groups.reload} />
  }
  return (
    <>
      <ErrorMessage error={groups.error} onRetry={groups.reload} />
      {groups.data.length === 0 ? <p class="muted">No groups yet.</p> : (
        <ul class="group-list">
          {groups.data.map((group) => <GroupRow key={group.id} app={app} group={group} />)}
        </ul>
      )}
    </>
  )
}

const AppCard = ({ app }: { app: Application }) => (
  <Panel
    title={app.name}
    actions={
      <nav class="mini-tabs" aria-label={`${app.name} pages`}>
        <a href={href.instances(app.id)}>Instances</a>
        <a href={href.channels(app.id)}>Channels and packages</a>
      </nav>
    }
  >
    <p class="muted small app-id">
      <a href={href.app(app.id)}>
        <code>{app.id}</code>
      </a>
      {app.description === "" ? null : ` · ${app.description}`}
    </p>
    <GroupList app={app.id} />
  </Panel>
)

const NewApplication = ({ onCreated }: { onCreated: (app: Application) => void }) => {
  const [id, setId] = useState("")
  const [name, setName] = useState("")
  const action = useAction()
  const submit = async (event: Event) => {
    event.preventDefault()
    const created = await action.run(() => api.createApp({ id: id.trim(), name: name.trim() }))
    if (created !== undefined) {
      setId("")
      setName("")
      onCreated(created)
    }
  }
  return (
    <form class="inline-form" onSubmit={submit} aria-label="New application">
      <label>
        App id
        <input value={id} required placeholder="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" onInput={(e) => setId(e.currentTarget.value)} />
      </label>
      <label>
        Name
        <input value={name} required placeholder="Flatcar" onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <button type="submit" class="primary" disabled={action.busy}>
        Add application
      </button>
      <ErrorMessage error={action.error} />
    </form>
  )
}

/** Every application with its groups. */
export const AppsView = () => {
  const apps = useLoad(() => api.apps(), "apps", 15000)
  const { canEdit } = useSession()
  return (
    <div class="page">
      <h1>Applications</h1>
      <ErrorMessage error={apps.error} onRetry={apps.reload} />
      {apps.data === undefined ? (apps.error === undefined ? <Loading what="applications" /> : null) : (
        <>
          {apps.data.length === 0 ? <p class="muted">No applications yet.</p> : null}
          {apps.data.map((app) => <AppCard key={app.id} app={app} />)}
        </>
      )}
      {canEdit ? (
        <Panel title="New application">
          <NewApplication onCreated={() => apps.reload()} />
        </Panel>
      ) : null}
    </div>
  )
}

const NewGroup = ({ app }: { app: string }) => {
  const channels = useLoad(() => api.channels(app), `${app}/channels`)
  const [name, setName] = useState("")
  const [track, setTrack] = useState("")
  const [channel, setChannel] = useState("")
  const [maxUpdates, setMaxUpdates] = useState("2")
  const [periodMinutes, setPeriodMinutes] = useState("15")
  const [percent, setPercent] = useState("100")
  const [safeMode, setSafeMode] = useState(true)
  const action = useAction()
  const channelNames = [...new Set((channels.data ?? []).map((c) => c.name))]
  const chosen = channel === "" ? channelNames[0] ?? "" : channel
  const submit = async (event: Event) => {
    event.preventDefault()
    const policy: PolicyPatch = {
      maxUpdatesPerPeriod: Number(maxUpdates),
      periodSeconds: Math.round(Number(periodMinutes) * 60),
      rolloutPercent: Number(percent),
      safeMode
    }
    const created = await action.run(() =>
      api.createGroup(app, {
        name: name.trim(),
        channel: chosen,
        policy,
        ...(track.trim() === "" ? {} : { track: track.trim() })
      })
    )
    if (created !== undefined) go(href.group(app, created.name))
  }
  return (
    <form class="grid-form" onSubmit={submit} aria-label="New group">
      <label>
        Name
        <input name="name" value={name} required onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label>
        Track <span class="muted small">(what machines send; the name if empty)</span>
        <input name="track" value={track} placeholder={name} onInput={(e) => setTrack(e.currentTarget.value)} />
      </label>
      <label>
        Channel
        {channelNames.length === 0 ? (
          <input name="channel" value={channel} required onInput={(e) => setChannel(e.currentTarget.value)} />
        ) : (
          <select name="channel" value={chosen} onChange={(e) => setChannel(e.currentTarget.value)}>
            {channelNames.map((c) => <option key={c} value={c}>{c}</option>)}
          </select>
        )}
      </label>
      <label>
        Updates per period
        <input name="maxUpdatesPerPeriod" type="number" min="0" value={maxUpdates} onInput={(e) => setMaxUpdates(e.currentTarget.value)} />
      </label>
      <label>
        Period (minutes)
        <input name="periodMinutes" type="number" min="1" step="any" value={periodMinutes} onInput={(e) => setPeriodMinutes(e.currentTarget.value)} />
      </label>
      <label>
        Rollout percentage
        <input name="rolloutPercent" type="number" min="0" max="100" step="any" value={percent} onInput={(e) => setPercent(e.currentTarget.value)} />
      </label>
      <label class="check">
        <input name="safeMode" type="checkbox" checked={safeMode} onChange={(e) => setSafeMode(e.currentTarget.checked)} />
        Safe mode (one update until the first one finishes)
      </label>
      <div class="form-actions">
        <button type="submit" class="primary" disabled={action.busy}>
          Create group
        </button>
      </div>
      <ErrorMessage error={action.error} />
      <ErrorMessage error={channels.error} onRetry={channels.reload} />
    </form>
  )
}

/** One application's groups, and (for admins) a form for a new one. */
export const AppView = ({ app }: { app: string }) => {
  const { canEdit } = useSession()
  return (
    <AppFrame app={app} tab="groups">
      <Panel title="Groups">
        <GroupList app={app} />
      </Panel>
      {canEdit ? (
        <Panel title="New group" id="new-group">
          <NewGroup app={app} />
        </Panel>
      ) : null}
    </AppFrame>
  )
}
