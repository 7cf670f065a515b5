/** The activity feed, newest first: rollouts started, finished, paused, braked; machines failed; channels moved. */
import { useState } from "preact/hooks"
import { api } from "../api.js"
import { Ago, ErrorMessage, Loading } from "../components.js"
import { useAction, useLoad } from "../hooks.js"
import { href } from "../route.js"
import type { Activity } from "../types.js"

const kindLabels: Record<Activity["kind"], string> = {
  rolloutStarted: "Rollout started",
  rolloutFinished: "Rollout finished",
  rolloutPaused: "Rollout paused",
  rolloutResumed: "Rollout resumed",
  rolloutBraked: "Failure brake",
  instanceFailed: "Machine failed",
  channelMoved: "Channel moved",
  packageNotFound: "Package not found"
}

/** The activity page. */
export const ActivityView = () => {
  const latest = useLoad(() => api.activity(), "activity", 10000)
  const [older, setOlder] = useState<Array<Activity>>([])
  const [end, setEnd] = useState(false)
  const more = useAction()
  const shown = [...(latest.data ?? []), ...older.filter((o) => !(latest.data ?? []).some((l) => l.id === o.id))]
  const loadOlder = async () => {
    const last = shown[shown.length - 1]
    if (last === undefined) return
    const page = await more.run(() => api.activity(last.id))
    if (page !== undefined) {
      setOlder((o) => [...o, ...page])
      if (page.length === 0) setEnd(true)
    }
  }
  return (
    <div class="page">
      <h1>Activity</h1>
      <ErrorMessage error={latest.error} onRetry={latest.reload} />
      {latest.data === undefined ? (latest.error === undefined ? <Loading what="activity" /> : null) : (
        shown.length === 0 ? <p class="muted">Nothing has happened yet.</p> : (
          <ol class="feed">
            {shown.map((a) => (
              <li key={a.id} class={`feed-item sev-${a.severity}`} data-kind={a.kind}>
                <div class="feed-head">
                  <span class={`sev sev-${a.severity}`}>{kindLabels[a.kind]}</span>
                  <Ago iso={a.at} />
                </div>
                <p>{a.message}</p>
                <p class="muted small">
                  {a.appId === undefined ? null : <a href={href.app(a.appId)}>{a.appId}</a>}
                  {a.appId !== undefined && a.group !== undefined ? (
                    <>
                      {" · group "}
                      <a href={href.group(a.appId, a.group)}>{a.group}</a>
                    </>
                  ) : null}
                  {a.channel === undefined ? null : ` · channel ${a.channel}`}
                  {a.version === undefined ? null : ` · ${a.version}`}
                </p>
              </li>
            ))}
          </ol>
        )
      )}
      <ErrorMessage error={more.error} />
      {shown.length >= 50 && !end ? (
        <button type="button" onClick={loadOlder} disabled={more.busy}>
          Older entries
        </button>
      ) : null}
    </div>
  )
}
