/**
 * An application's machines: a table filtered by group, status, version
 * and a search over machine id, alias and address; sorted by a column and
 * paged by the server (so ten thousand machines cost one page).
 */
import { useEffect, useRef, useState } from "preact/hooks"
import { api, type InstanceQuery } from "../api.js"
import { Ago, ErrorMessage, Loading, Pager, Panel, StatusBadge } from "../components.js"
import * as Format from "../format.js"
import { useLoad } from "../hooks.js"
import { go, href } from "../route.js"
import { statuses, statusShort } from "../status.js"
import type { Status } from "../types.js"
import { AppFrame } from "./common.js"

const perPage = 50
const sortable = ["machineId", "group", "version", "status", "lastCheck"] as const
type SortKey = (typeof sortable)[number]
const columnNames: Record<SortKey, string> = {
  machineId: "Machine",
  group: "Group",
  version: "Version",
  status: "Status",
  lastCheck: "Last check"
}

const isStatus = (s: string | null): s is Status => s !== null && (statuses as ReadonlyArray<string>).includes(s)
const isSortKey = (s: string | null): s is SortKey => s !== null && (sortable as ReadonlyArray<string>).includes(s)

/** The instances page; its filters live in the URL. */
export const InstancesView = ({ app, params }: { app: string; params: URLSearchParams }) => {
  const status = params.get("status")
  const sortParam = params.get("sort")
  const query = {
    group: params.get("group") ?? undefined,
    status: isStatus(status) ? status : undefined,
    version: params.get("version") ?? undefined,
    search: params.get("search") ?? undefined,
    sort: isSortKey(sortParam) ? sortParam : "lastCheck",
    order: params.get("order") === "asc" ? "asc" : params.get("order") === "desc" ? "desc" : sortParam === null ? "desc" : "asc",
    page: Math.max(1, Number(params.get("page") ?? "1") || 1),
    perPage
  } satisfies InstanceQuery
  const key = JSON.stringify([app, query])
  const instances = useLoad(() => api.instances(app, query), key, 10000)
  const groups = useLoad(() => api.groups(app), `${app}/groups`)
  const packages = useLoad(() => api.packages(app), `${app}/packages`)
  const [search, setSearch] = useState(query.search ?? "")

  const change = (patch: Partial<Record<keyof typeof query, string | number | undefined>>) =>
    go(href.instances(app, { ...query, page: undefined, perPage: undefined, ...patch }))

  // The box follows the URL when the URL changes from elsewhere (a link, going back), never
  // because of what is being typed into it.
  const pushed = useRef(query.search)
  useEffect(() => {
    if (query.search !== pushed.current) setSearch(query.search ?? "")
    pushed.current = query.search
  }, [query.search])
  useEffect(() => {
    const wanted = search.trim() === "" ? undefined : search.trim()
    if (wanted === query.search) return
    const timer = setTimeout(() => {
      pushed.current = wanted
      change({ search: wanted })
    }, 300)
    return () => clearTimeout(timer)
  }, [search])

  const versions = [...new Set((packages.data ?? []).map((p) => p.version))].sort((a, b) => Format.compareVersions(b, a))
  const sortBy = (column: SortKey) =>
    change({ sort: column, order: query.sort === column && query.order === "asc" ? "desc" : "asc" })
  const page = instances.data

  return (
    <AppFrame app={app} tab="instances" crumbs={[["Instances", href.instances(app)]]}>
      <Panel title="Instances" id="instances">
        <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
          <label>
            Search
            <input
              type="search"
              name="search"
              placeholder="machine id, alias or address"
              value={search}
              onInput={(e) => setSearch(e.currentTarget.value)}
            />
          </label>
          <label>
            Group
            <select name="group" value={query.group ?? ""} onChange={(e) => change({ group: e.currentTarget.value || undefined })}>
              <option value="">any</option>
              {(groups.data ?? []).map((g) => <option key={g.id} value={g.name}>{g.name}</option>)}
              {query.group !== undefined && !(groups.data ?? []).some((g) => g.name === query.group)
                ? <option value={query.group}>{query.group}</option>
                : null}
            </select>
          </label>
          <label>
            Status
            <select name="status" value={query.status ?? ""} onChange={(e) => change({ status: e.currentTarget.value || undefined })}>
              <option value="">any</option>
              {statuses.map((s) => <option key={s} value={s}>{statusShort[s]}</option>)}
            </select>
          </label>
          <label>
            Version
            <select name="version" value={query.version ?? ""} onChange={(e) => change({ version: e.currentTarget.value || undefined })}>
              <option value="">any</option>
              {versions.map((v) => <option key={v} value={v}>{v}</option>)}
              {query.version !== undefined && !versions.includes(query.version) ? <option value={query.version}>{query.version}</option> : null}
            </select>
          </label>
        </form>
        <ErrorMessage error={instances.error} onRetry={instances.reload} />
        <ErrorMessage error={groups.error} onRetry={groups.reload} />
        <ErrorMessage error={packages.error} onRetry={packages.reload} />
        {page === undefined ? (instances.error === undefined ? <Loading what="instances" /> : null) : (
          <>
            <div class="table-wrap">
              <table class="instances" aria-label="Instances" data-total={page.total}>
                <thead>
                  <tr>
                    {sortable.map((column) => (
                      <th
                        key={column}
                        class={column === "group" || column === "lastCheck" ? "wide-only" : undefined}
                        aria-sort={query.sort === column ? (query.order === "asc" ? "ascending" : "descending") : undefined}
                      >
                        <button type="button" class="sort" onClick={() => sortBy(column)}>
                          {columnNames[column]}
                          <span aria-hidden="true">{query.sort === column ? (query.order === "asc" ? " ▲" : " ▼") : ""}</span>
                        </button>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {page.items.length === 0 ? (
                    <tr>
                      <td colSpan={5} class="muted">No instance matches.</td>
                    </tr>
                  ) : page.items.map((i) => (
                    <tr key={i.machineId} data-machine={i.machineId}>
                      <td>
                        <a href={href.instance(app, i.machineId)} class="machine">
                          {i.alias === "" ? i.machineId : i.alias}
                        </a>
                        {i.alias === "" ? null : <div class="muted small mono">{i.machineId}</div>}
                      </td>
                      <td class="wide-only">{i.group === undefined ? <span class="muted">none</span> : <a href={href.group(app, i.group)}>{i.group}</a>}</td>
                      <td class="mono">{i.version}</td>
                      <td>
                        <StatusBadge status={i.status} />
                        {i.hold === undefined ? null : <div class="muted small">{i.hold}</div>}
                      </td>
                      <td class="wide-only">
                        <Ago iso={i.lastCheck} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager page={query.page} perPage={perPage} total={page.total} onPage={(p) => change({ page: p })} />
          </>
        )}
      </Panel>
    </AppFrame>
  )
}
