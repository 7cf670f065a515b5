/** Pieces the views share: messages, badges, bars, legends, pagers. */
import type { ComponentChildren } from "preact"
import type { ApiFailure } from "./api.js"
import * as Format from "./format.js"
import { statusColours, statuses, statusShort } from "./status.js"
import type { Status } from "./types.js"

/** An API failure, said on the page. */
export const ErrorMessage = ({ error, onRetry }: { error: ApiFailure | undefined; onRetry?: () => void }) =>
  error === undefined ? null : (
    <div class="error" role="alert" data-error-tag={error.tag}>
      <span>{error.message}</span>
      {onRetry === undefined ? null : (
        <button type="button" class="link" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  )

/** A placeholder while the first answer is on its way. */
export const Loading = ({ what }: { what: string }) => <p class="muted loading" aria-busy="true">Loading {what}…</p>

/** A status as a coloured label. */
export const StatusBadge = ({ status }: { status: Status }) => (
  <span class="badge" data-status={status}>
    <span class="dot" style={{ background: statusColours[status] }} />
    {statusShort[status]}
  </span>
)

/** One segment of a bar. */
export interface Segment {
  readonly key: string
  readonly label: string
  readonly value: number
  readonly colour: string
}

/** A horizontal bar of parts of a whole, with a `<title>` per part for the numbers. */
export const StackedBar = ({ segments, label }: { segments: ReadonlyArray<Segment>; label: string }) => {
  const total = segments.reduce((sum, s) => sum + s.value, 0)
  return (
    <div class="bar" role="img" aria-label={`${label}: ${segments.filter((s) => s.value > 0).map((s) => `${s.label} ${s.value}`).join(", ") || "none"}`}>
      {total === 0 ? <div class="bar-empty" /> : segments.filter((s) => s.value > 0).map((s) => (
        <div
          key={s.key}
          class="bar-part"
          title={`${s.label}: ${Format.count(s.value)} (${Format.percent(s.value, total)})`}
          style={{ width: `${(s.value / total) * 100}%`, background: s.colour }}
        />
      ))}
    </div>
  )
}

/** The key of a bar (with each part's count) or of a chart (`counts` false). */
export const Legend = ({ segments, counts = true }: { segments: ReadonlyArray<Segment>; counts?: boolean }) => (
  <ul class="legend">
    {segments.filter((s) => s.value > 0).map((s) => (
      <li key={s.key}>
        <span class="dot" style={{ background: s.colour }} />
        {s.label}
        {counts ? <span class="muted"> {Format.count(s.value)}</span> : null}
      </li>
    ))}
  </ul>
)

/** The bar segments of status counts, in update order. */
export const statusSegments = (counts: Readonly<Partial<Record<Status, number>>>): Array<Segment> =>
  statuses.map((status) => ({ key: status, label: statusShort[status], value: counts[status] ?? 0, colour: statusColours[status] }))

/** Page links under a table. */
export const Pager = (
  { page, perPage, total, onPage }: { page: number; perPage: number; total: number; onPage: (page: number) => void }
) => {
  const pages = Math.max(1, Math.ceil(total / perPage))
  const first = total === 0 ? 0 : (page - 1) * perPage + 1
  const last = Math.min(total, page * perPage)
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)}>
        ← Previous
      </button>
      <span class="muted">
        {Format.count(first)}–{Format.count(last)} of {Format.count(total)} · page {page} of {pages}
      </span>
      <button type="button" disabled={page >= pages} onClick={() => onPage(page + 1)}>
        Next →
      </button>
    </nav>
  )
}

/** A titled box on a page. */
export const Panel = (
  { title, children, actions, id }: { title: string; children: ComponentChildren; actions?: ComponentChildren; id?: string }
) => (
  <section class="panel" aria-labelledby={id === undefined ? undefined : `${id}-title`}>
    <header class="panel-head">
      <h2 id={id === undefined ? undefined : `${id}-title`}>{title}</h2>
      {actions === undefined ? null : <div class="panel-actions">{actions}</div>}
    </header>
    {children}
  </section>
)

/** A number with its label, for the rollout counts. */
export const Stat = ({ label, value, colour, name }: { label: string; value: number; colour?: string; name: string }) => (
  <div class="stat" data-stat={name}>
    <span class="stat-value">{Format.count(value)}</span>
    <span class="stat-label">
      {colour === undefined ? null : <span class="dot" style={{ background: colour }} />}
      {label}
    </span>
  </div>
)

/** A "what it is: its value" list. */
export const Facts = ({ rows }: { rows: ReadonlyArray<readonly [string, ComponentChildren]> }) => (
  <dl class="facts">
    {rows.map(([term, value]) => (
      <div key={term}>
        <dt>{term}</dt>
        <dd>{value}</dd>
      </div>
    ))}
  </dl>
)

/** An ISO time shown as "5 min ago", with the full time on hover. */
export const Ago = ({ iso }: { iso: string | undefined }) =>
  iso === undefined ? <span class="muted">never</span> : <time dateTime={iso} title={Format.time(iso)}>{Format.ago(iso)}</time>
