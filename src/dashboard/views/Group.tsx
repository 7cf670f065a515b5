/**
 * One group: its channel and policy at a glance, the rollout's progress
 * (counts by status, hold reasons, failures by error code), versions and
 * statuses over time, pause and resume, and the policy editor (admins).
 */
import { useState } from "preact/hooks"
import { explain, name as codeName } from "../../protocol/internal/codeTables.js"
import { api, type PolicyPatch } from "../api.js"
import { type ChartData, type Series, StackedAreaChart } from "../chart.js"
import { ErrorMessage, Facts, Legend, Loading, Panel, type Segment, StackedBar, Stat, statusSegments } from "../components.js"
import * as Format from "../format.js"
import { type Action, type Loaded, useAction, useLoad } from "../hooks.js"
import { href } from "../route.js"
import { useSession } from "../session.js"
import { statusColours, statuses, statusShort, versionColours } from "../status.js"
import type { Channel, Group, GroupStatus, MaintenanceWindow, Policy, Status, Timeline, TimelineWindow } from "../types.js"
import { AppFrame } from "./common.js"

const windows: ReadonlyArray<TimelineWindow> = ["1h", "1d", "7d", "30d"]
const windowLabels: Record<TimelineWindow, string> = { "1h": "1 hour", "1d": "1 day", "7d": "7 days", "30d": "30 days" }
const days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const

const versionLabel = (v: string) => (v === "" ? "unknown" : v)

// One colour per version on the page, newest first, for bars and charts alike.
const versionPalette = (status: GroupStatus | undefined, timeline: Timeline | undefined): Map<string, string> => {
  const all = new Set<string>()
  for (const v of status?.versions ?? []) all.add(v.version)
  for (const p of timeline?.points ?? []) for (const v of Object.keys(p.versions)) all.add(v)
  const sorted = [...all].sort((a, b) => Format.compareVersions(b, a))
  return new Map(sorted.map((v, i) => [v, versionColours[i % versionColours.length]!]))
}

const policyRows = (policy: Policy): Array<readonly [string, string]> => [
  ["Updates", policy.updatesEnabled ? "enabled" : "disabled"],
  ["Rollout", `${policy.rolloutPercent} % of the group`],
  ["Per period", `at most ${policy.maxUpdatesPerPeriod} every ${Format.duration(policy.periodSeconds)}`],
  ["At once", `at most ${policy.maxConcurrentUpdates ?? policy.maxUpdatesPerPeriod} in progress`],
  ["Timeout", `an update not finished in ${Format.duration(policy.updateTimeoutSeconds)} stops counting as in progress`],
  ["Safe mode", policy.safeMode ? "on: one update until the first one finishes" : "off"],
  [
    "Failure brake",
    policy.failureBrake === undefined
      ? "none"
      : `pause when over ${Math.round(policy.failureBrake.ratio * 100)} % of at least ${policy.failureBrake.minAttempts} finished updates failed`
  ],
  ["Downgrades", policy.allowDowngrade ? "allowed" : "not allowed"],
  [
    "Windows",
    policy.windows.length === 0
      ? "any time"
      : policy.windows.map((w) => `${w.days.join(", ")} ${w.start}–${w.end} ${w.timeZone}`).join("; ")
  ]
]

const Progress = ({ app, status, palette }: { app: string; status: GroupStatus; palette: Map<string, string> }) => {
  const s = status.statuses
  const versions: Array<Segment> = status.versions.map((v) => ({
    key: v.version,
    label: versionLabel(v.version),
    value: v.count,
    colour: palette.get(v.version) ?? "#475569"
  }))
  const link = (st?: Status) => href.instances(app, { group: status.group, status: st })
  const stats: Array<readonly [Status, string]> = [
    ["granted", "Granted"],
    ["downloading", "Downloading"],
    ["downloaded", "Downloaded"],
    ["installed", "Installed"],
    ["complete", "Complete"],
    ["error", "Failed"],
    ["onHold", "On hold"],
    ["undefined", "Idle"]
  ]
  return (
    <>
      <div class="stats">
        <a href={link()} class="stat-link">
          <Stat name="total" label="Instances" value={status.total} />
        </a>
        {stats.map(([st, label]) => (
          <a key={st} href={link(st)} class="stat-link">
            <Stat name={st} label={label} value={s[st]} colour={statusColours[st]} />
          </a>
        ))}
      </div>
      <div class="bar-line">
        <span class="bar-label">Versions</span>
        <StackedBar segments={versions} label="Instances by version" />
      </div>
      <Legend segments={versions} />
      <div class="bar-line">
        <span class="bar-label">Statuses</span>
        <StackedBar segments={statusSegments(s)} label="Instances by status" />
      </div>
      <Legend segments={statusSegments(s)} />
      <div class="columns">
        <div>
          <h3>On hold, by reason</h3>
          {status.holds.length === 0 ? <p class="muted">No machine is on hold.</p> : (
            <table class="compact" aria-label="Hold reasons">
              <tbody>
                {status.holds.map((h) => (
                  <tr key={h.reason} data-hold={h.reason}>
                    <td>{h.reason}</td>
                    <td class="num">{Format.count(h.count)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
        <div>
          <h3>Failed, by error</h3>
          {status.errors.length === 0 ? <p class="muted">No failures.</p> : (
            <table class="compact" aria-label="Failures by error code">
              <tbody>
                {status.errors.map((e) => (
                  <tr key={e.code}>
                    <td>
                      <code>{codeName(e.code & 0x0fffffff)}</code> ({e.code}): {explain(e.code)}
                    </td>
                    <td class="num">{Format.count(e.count)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      </div>
    </>
  )
}

const chartOf = (timeline: Timeline, pick: "statuses" | "versions"): ChartData => ({
  times: timeline.points.map((p) => Date.parse(p.at)),
  values: timeline.points.map((p) => p[pick])
})

const Charts = ({ timeline, window, setWindow, palette }: {
  timeline: Loaded<Timeline>
  window: TimelineWindow
  setWindow: (w: TimelineWindow) => void
  palette: Map<string, string>
}) => {
  const t = timeline.data
  const versionSeries: Array<Series> = [...palette.keys()].reverse().map((v) => ({
    key: v,
    label: versionLabel(v),
    colour: palette.get(v)!
  }))
  const statusSeries: Array<Series> = statuses.map((s) => ({ key: s, label: statusShort[s], colour: statusColours[s] }))
  return (
    <Panel
      title="Over time"
      id="timeline"
      actions={
        <div class="segmented" role="group" aria-label="Time window">
          {windows.map((w) => (
            <button key={w} type="button" aria-pressed={w === window} onClick={() => setWindow(w)} title={windowLabels[w]}>
              {w}
            </button>
          ))}
        </div>
      }
    >
      <ErrorMessage error={timeline.error} onRetry={timeline.reload} />
      {t === undefined ? (timeline.error === undefined ? <Loading what="the timeline" /> : null) : (
        <div class="charts">
          <div>
            <h3>Versions</h3>
            <StackedAreaChart data={chartOf(t, "versions")} series={versionSeries} label={`Versions over ${windowLabels[window]}`} />
            <Legend
              counts={false}
              segments={versionSeries.slice().reverse().map((s) => ({ ...s, value: t.points.some((p) => (p.versions[s.key] ?? 0) > 0) ? 1 : 0 }))}
            />
          </div>
          <div>
            <h3>Statuses</h3>
            <StackedAreaChart data={chartOf(t, "statuses")} series={statusSeries} label={`Statuses over ${windowLabels[window]}`} />
            <Legend counts={false} segments={statusSeries.map((s) => ({ ...s, value: t.points.some((p) => (p.statuses[s.key] ?? 0) > 0) ? 1 : 0 }))} />
          </div>
        </div>
      )}
    </Panel>
  )
}

const num = (text: string): number => (text.trim() === "" ? NaN : Number(text))

const WindowEditor = (
  { value, onChange }: { value: ReadonlyArray<MaintenanceWindow>; onChange: (w: Array<MaintenanceWindow>) => void }
) => {
  const set = (i: number, patch: Partial<MaintenanceWindow>) => onChange(value.map((w, j) => (i === j ? { ...w, ...patch } : w)))
  return (
    <fieldset class="windows">
      <legend>Maintenance windows (none: any time)</legend>
      {value.map((w, i) => (
        <div class="window-row" key={i}>
          <div class="days">
            {days.map((d) => (
              <label class="check" key={d}>
                <input
                  type="checkbox"
                  checked={w.days.includes(d)}
                  onChange={(e) =>
                    set(i, { days: e.currentTarget.checked ? days.filter((x) => x === d || w.days.includes(x)) : w.days.filter((x) => x !== d) })}
                />
                {d}
              </label>
            ))}
          </div>
          <label>
            From
            <input type="time" value={w.start} onInput={(e) => set(i, { start: e.currentTarget.value })} />
          </label>
          <label>
            To
            <input type="time" value={w.end} onInput={(e) => set(i, { end: e.currentTarget.value })} />
          </label>
          <label>
            Time zone
            <input value={w.timeZone} onInput={(e) => set(i, { timeZone: e.currentTarget.value })} />
          </label>
          <button type="button" onClick={() => onChange(value.filter((_, j) => j !== i))}>
            Remove
          </button>
        </div>
      ))}
      <button
        type="button"
        onClick={() =>
          onChange([...value, {
            days: ["mon", "tue", "wed", "thu", "fri"],
            start: "09:00",
            end: "17:00",
            timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone
          }])}
      >
        Add a window
      </button>
    </fieldset>
  )
}

const PolicyForm = ({ group, action, onSave, onCancel }: {
  group: Group
  action: Action
  onSave: (patch: PolicyPatch) => void
  onCancel: () => void
}) => {
  const p = group.policy
  const [updatesEnabled, setUpdatesEnabled] = useState(p.updatesEnabled)
  const [percent, setPercent] = useState(String(p.rolloutPercent))
  const [maxUpdates, setMaxUpdates] = useState(String(p.maxUpdatesPerPeriod))
  const [periodMinutes, setPeriodMinutes] = useState(String(p.periodSeconds / 60))
  const [concurrent, setConcurrent] = useState(p.maxConcurrentUpdates === undefined ? "" : String(p.maxConcurrentUpdates))
  const [timeoutMinutes, setTimeoutMinutes] = useState(String(p.updateTimeoutSeconds / 60))
  const [safeMode, setSafeMode] = useState(p.safeMode)
  const [allowDowngrade, setAllowDowngrade] = useState(p.allowDowngrade)
  const [brake, setBrake] = useState(p.failureBrake !== undefined)
  const [brakePercent, setBrakePercent] = useState(String(Math.round((p.failureBrake?.ratio ?? 0.2) * 100)))
  const [brakeMin, setBrakeMin] = useState(String(p.failureBrake?.minAttempts ?? 5))
  const [windowList, setWindowList] = useState<Array<MaintenanceWindow>>(p.windows.map((w) => ({ ...w, days: [...w.days] })))
  const submit = (event: Event) => {
    event.preventDefault()
    onSave({
      updatesEnabled,
      rolloutPercent: num(percent),
      maxUpdatesPerPeriod: num(maxUpdates),
      periodSeconds: Math.round(num(periodMinutes) * 60),
      maxConcurrentUpdates: concurrent.trim() === "" ? null : num(concurrent),
      updateTimeoutSeconds: Math.round(num(timeoutMinutes) * 60),
      safeMode,
      allowDowngrade,
      failureBrake: brake ? { ratio: num(brakePercent) / 100, minAttempts: num(brakeMin) } : null,
      windows: windowList
    })
  }
  return (
    <form class="grid-form" onSubmit={submit} aria-label="Policy">
      <label class="check">
        <input name="updatesEnabled" type="checkbox" checked={updatesEnabled} onChange={(e) => setUpdatesEnabled(e.currentTarget.checked)} />
        Updates enabled
      </label>
      <label>
        Rollout percentage
        <input name="rolloutPercent" type="number" min="0" max="100" step="any" value={percent} onInput={(e) => setPercent(e.currentTarget.value)} />
      </label>
      <label>
        Updates per period
        <input name="maxUpdatesPerPeriod" type="number" min="0" value={maxUpdates} onInput={(e) => setMaxUpdates(e.currentTarget.value)} />
      </label>
      <label>
        Period (minutes)
        <input name="periodMinutes" type="number" min="0.0167" step="any" value={periodMinutes} onInput={(e) => setPeriodMinutes(e.currentTarget.value)} />
      </label>
      <label>
        At once, at most <span class="muted small">(empty: per period)</span>
        <input name="maxConcurrentUpdates" type="number" min="0" value={concurrent} onInput={(e) => setConcurrent(e.currentTarget.value)} />
      </label>
      <label>
        Update timeout (minutes)
        <input name="timeoutMinutes" type="number" min="0.0167" step="any" value={timeoutMinutes} onInput={(e) => setTimeoutMinutes(e.currentTarget.value)} />
      </label>
      <label class="check">
        <input name="safeMode" type="checkbox" checked={safeMode} onChange={(e) => setSafeMode(e.currentTarget.checked)} />
        Safe mode
      </label>
      <label class="check">
        <input name="allowDowngrade" type="checkbox" checked={allowDowngrade} onChange={(e) => setAllowDowngrade(e.currentTarget.checked)} />
        Allow downgrades
      </label>
      <label class="check">
        <input name="failureBrake" type="checkbox" checked={brake} onChange={(e) => setBrake(e.currentTarget.checked)} />
        Failure brake
      </label>
      {brake ? (
        <>
          <label>
            Pause over (% failed)
            <input name="brakePercent" type="number" min="0" max="100" step="any" value={brakePercent} onInput={(e) => setBrakePercent(e.currentTarget.value)} />
          </label>
          <label>
            Once finished, at least
            <input name="brakeMinAttempts" type="number" min="1" value={brakeMin} onInput={(e) => setBrakeMin(e.currentTarget.value)} />
          </label>
        </>
      ) : null}
      <WindowEditor value={windowList} onChange={setWindowList} />
      <div class="form-actions">
        <button type="submit" class="primary" disabled={action.busy}>
          Save policy
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
      <ErrorMessage error={action.error} />
    </form>
  )
}

const PauseControls = ({ group, action, onDone }: { group: Group; action: Action; onDone: (g: Group) => void }) => {
  const [reason, setReason] = useState("")
  if (group.paused) {
    return (
      <div class="pause-controls">
        <button
          type="button"
          class="primary"
          disabled={action.busy}
          onClick={async () => {
            const g = await action.run(() => api.resume(group.appId, group.name))
            if (g !== undefined) onDone(g)
          }}
        >
          Resume rollout
        </button>
      </div>
    )
  }
  return (
    <form
      class="pause-controls"
      onSubmit={async (event) => {
        event.preventDefault()
        const g = await action.run(() => api.pause(group.appId, group.name, reason.trim()))
        if (g !== undefined) {
          setReason("")
          onDone(g)
        }
      }}
    >
      <input name="reason" placeholder="Reason (optional)" value={reason} onInput={(e) => setReason(e.currentTarget.value)} aria-label="Reason for the pause" />
      <button type="submit" class="warn" disabled={action.busy}>
        Pause rollout
      </button>
    </form>
  )
}

const ChannelTarget = ({ group, channels }: { group: Group; channels: ReadonlyArray<Channel> | undefined }) => {
  if (channels === undefined) return <span class="muted">…</span>
  const mine = channels.filter((c) => c.name === group.channel)
  if (mine.length === 0) return <span class="warn-text">no channel named {group.channel}</span>
  return (
    <span>
      {mine.map((c, i) => (
        <span key={c.arch}>
          {i === 0 ? "" : ", "}
          <strong>{c.package ?? "no package"}</strong> <span class="muted">({c.arch})</span>
        </span>
      ))}
    </span>
  )
}

/** The group page. */
export const GroupView = ({ app, name }: { app: string; name: string }) => {
  const { canEdit } = useSession()
  const group = useLoad(() => api.group(app, name), `${app}/${name}`, 5000)
  const status = useLoad(() => api.groupStatus(app, name), `${app}/${name}`, 3000)
  const channels = useLoad(() => api.channels(app), `${app}/channels`, 30000)
  // Asked for at once with the rest, not once the group has come.
  const [window, setWindow] = useState<TimelineWindow>("1h")
  const timeline = useLoad(() => api.timeline(app, name, window), `${app}/${name}/${window}`, window === "1h" ? 5000 : 60000)
  const [editing, setEditing] = useState(false)
  const pause = useAction()
  const save = useAction()
  const g = group.data
  const palette = versionPalette(status.data, timeline.data)
  const refresh = () => {
    group.reload()
    status.reload()
  }

  const title = (
    <div class="title-row">
      <h1>{name}</h1>
      {g?.paused === true ? <span class="pill warn" data-paused="true">paused</span> : null}
      {g !== undefined && !g.policy.updatesEnabled ? <span class="pill">updates off</span> : null}
    </div>
  )
  return (
    <AppFrame app={app} tab="groups" title={title} crumbs={[[name, href.group(app, name)]]}>
      <ErrorMessage error={group.error} onRetry={group.reload} />
      {g === undefined ? (group.error === undefined ? <Loading what="the group" /> : null) : (
        <>
          <Panel title="At a glance" id="glance">
            <Facts
              rows={[
                ["Channel", <span><code>{g.channel}</code> → <ChannelTarget group={g} channels={channels.data} /></span>],
                ["Track", <code>{g.track}</code>],
                ["Rollout", `${g.policy.rolloutPercent} %, at most ${g.policy.maxUpdatesPerPeriod} per ${Format.duration(g.policy.periodSeconds)}${g.policy.safeMode ? ", safe mode" : ""}`],
                [
                  "State",
                  g.paused
                    ? <span class="warn-text" data-state="paused">paused{g.pausedReason === undefined ? "" : `: ${g.pausedReason}`}</span>
                    : <span data-state="running">{g.policy.updatesEnabled ? "rolling out" : "updates disabled"}</span>
                ]
              ]}
            />
            {g.description === "" ? null : <p class="muted">{g.description}</p>}
            <ErrorMessage error={channels.error} onRetry={channels.reload} />
            {canEdit ? <PauseControls group={g} action={pause} onDone={refresh} /> : null}
            <ErrorMessage error={pause.error} />
          </Panel>
          <Panel title="Rollout" id="rollout">
            <ErrorMessage error={status.error} onRetry={status.reload} />
            {status.data === undefined ? (status.error === undefined ? <Loading what="the rollout" /> : null) : (
              <Progress app={app} status={status.data} palette={palette} />
            )}
          </Panel>
          <Charts timeline={timeline} window={window} setWindow={setWindow} palette={palette} />
          <Panel
            title="Policy"
            id="policy"
            actions={canEdit && !editing ? (
              <button type="button" onClick={() => (save.clear(), setEditing(true))}>
                Edit policy
              </button>
            ) : null}
          >
            {editing && canEdit ? (
              <PolicyForm
                group={g}
                action={save}
                onCancel={() => setEditing(false)}
                onSave={async (patch) => {
                  const saved = await save.run(() => api.updateGroup(app, name, { policy: patch }))
                  if (saved !== undefined) {
                    setEditing(false)
                    refresh()
                  }
                }}
              />
            ) : <Facts rows={policyRows(g.policy)} />}
          </Panel>
        </>
      )}
    </AppFrame>
  )
}
