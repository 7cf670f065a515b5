/** One machine: its facts, its status history and its events, error codes in update_engine's names and in words. */
import { describe, eventResultName, eventTypeName, explain } from "../../protocol/internal/codeTables.js"
import { api } from "../api.js"
import { Ago, ErrorMessage, Facts, Loading, Panel, StatusBadge } from "../components.js"
import * as Format from "../format.js"
import { useLoad } from "../hooks.js"
import { href } from "../route.js"
import type { InstanceEvent } from "../types.js"
import { AppFrame } from "./common.js"

/** A run of identical events (update_engine repeats 3/2 with every check), newest first. */
interface EventRun {
  readonly event: InstanceEvent
  readonly count: number
  /** The oldest of the run. */
  readonly since: string
}

const sameEvent = (a: InstanceEvent, b: InstanceEvent) =>
  a.eventType === b.eventType && a.eventResult === b.eventResult && a.errorCode === b.errorCode &&
  a.previousVersion === b.previousVersion && a.nextVersion === b.nextVersion

const runsOf = (events: ReadonlyArray<InstanceEvent>): Array<EventRun> => {
  const runs: Array<EventRun> = []
  for (const event of events) {
    const last = runs[runs.length - 1]
    if (last !== undefined && sameEvent(last.event, event)) runs[runs.length - 1] = { ...last, count: last.count + 1, since: event.at }
    else runs.push({ event, count: 1, since: event.at })
  }
  return runs
}

/** An error code as update_engine names it, and what it means. */
export const ErrorCode = ({ code }: { code: number }) => (
  <span class="error-code" data-code={code}>
    <code>{describe(code)}</code>: {explain(code)}
  </span>
)

/** The instance page. */
export const InstanceView = ({ app, machineId }: { app: string; machineId: string }) => {
  const instance = useLoad(() => api.instance(app, machineId), `${app}/${machineId}`, 10000)
  const i = instance.data
  return (
    <AppFrame
      app={app}
      tab="instances"
      crumbs={[["Instances", href.instances(app)], [i?.alias || machineId, href.instance(app, machineId)]]}
      title={<h1 class="mono-title">{i?.alias || machineId}</h1>}
    >
      <ErrorMessage error={instance.error} onRetry={instance.reload} />
      {i === undefined ? (instance.error === undefined ? <Loading what="the instance" /> : null) : (
        <>
          <Panel title="Machine" id="machine">
            <Facts
              rows={[
                ["Status", <span><StatusBadge status={i.status} />{i.hold === undefined ? null : <span class="muted"> {i.hold}</span>}</span>],
                ["Version", <span class="mono">{i.version}</span>],
                ...(i.grantedVersion === undefined ? [] : [["Granted", <span class="mono">{i.grantedVersion} <Ago iso={i.lastGrant} /></span>] as const]),
                ...(i.errorCode === undefined ? [] : [["Last error", <ErrorCode code={i.errorCode} />] as const]),
                ["Group", i.group === undefined ? <span class="muted">none (track {i.track})</span> : <a href={href.group(app, i.group)}>{i.group}</a>],
                ["Machine id", <span class="mono">{i.machineId}</span>],
                ["Alias", i.alias === "" ? <span class="muted">none</span> : i.alias],
                ["Address", <span class="mono">{i.ip}</span>],
                ["Arch", i.arch],
                ["OEM", i.oem === "" ? <span class="muted">none</span> : `${i.oem} ${i.oemVersion}`],
                ["First install", i.alephVersion === "" ? <span class="muted">unknown</span> : <span class="mono">{i.alephVersion}</span>],
                ["Last check", <Ago iso={i.lastCheck} />],
                ["First seen", <span>{Format.time(i.firstSeen)}</span>]
              ]}
            />
          </Panel>
          <Panel title="Status history" id="history">
            {i.history.length === 0 ? <p class="muted">No status changes yet.</p> : (
              <div class="table-wrap">
                <table aria-label="Status history">
                  <thead>
                    <tr>
                      <th>When</th>
                      <th>Status</th>
                      <th>Version</th>
                      <th>Error</th>
                    </tr>
                  </thead>
                  <tbody>
                    {i.history.map((h, k) => (
                      <tr key={k}>
                        <td class="when" title={h.at}>{Format.time(h.at)}</td>
                        <td><StatusBadge status={h.status} /></td>
                        <td class="mono">{h.version}</td>
                        <td>{h.errorCode === undefined ? null : <ErrorCode code={h.errorCode} />}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Panel>
          <Panel title="Events" id="events">
            {i.events.length === 0 ? <p class="muted">No events yet.</p> : (
              <div class="table-wrap">
                <table aria-label="Events">
                  <thead>
                    <tr>
                      <th>When</th>
                      <th>Event</th>
                      <th>Versions</th>
                      <th>Error</th>
                    </tr>
                  </thead>
                  <tbody>
                    {runsOf(i.events).map(({ count, event: e, since }, k) => (
                      <tr key={k}>
                        <td class="when" title={e.at}>
                          {Format.time(e.at)}
                          {count === 1 ? null : <div class="muted small">since {Format.time(since)}</div>}
                        </td>
                        <td>
                          {eventTypeName(e.eventType)}: {eventResultName(e.eventResult)}{" "}
                          <span class="muted small">({e.eventType}/{e.eventResult})</span>
                          {count === 1 ? null : <span class="pill">×{count}</span>}
                        </td>
                        <td class="mono small">
                          {e.previousVersion === undefined
                            ? (e.nextVersion === undefined ? null : `to ${e.nextVersion}`)
                            : e.nextVersion === undefined
                            ? `from ${e.previousVersion}`
                            : `${e.previousVersion} → ${e.nextVersion}`}
                        </td>
                        <td>{e.errorCode === undefined ? null : <ErrorCode code={e.errorCode} />}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Panel>
        </>
      )}
    </AppFrame>
  )
}
