/** The frame of an application's pages: its name, and tabs to its groups, instances and channels. */
import { type ComponentChildren, Fragment } from "preact"
import { api } from "../api.js"
import { ErrorMessage } from "../components.js"
import { useLoad } from "../hooks.js"
import { href } from "../route.js"

/** Which tab of an application is open. */
export type AppTab = "groups" | "instances" | "channels"

/** An application's page: breadcrumb, title, tabs, then the page. */
export const AppFrame = (
  { app, tab, title, children, crumbs = [] }: {
    app: string
    tab: AppTab
    title?: ComponentChildren
    crumbs?: ReadonlyArray<readonly [string, string]>
    children: ComponentChildren
  }
) => {
  const application = useLoad(() => api.app(app), app)
  const name = application.data?.name ?? app
  return (
    <div class="page">
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href={href.apps()}>Applications</a>
        <span aria-hidden="true">/</span>
        <a href={href.app(app)}>{name}</a>
        {crumbs.map(([label, link]) => (
          <Fragment key={link}>
            <span aria-hidden="true">/</span>
            <a href={link}>{label}</a>
          </Fragment>
        ))}
      </nav>
      <ErrorMessage error={application.error} onRetry={application.reload} />
      {title === undefined ? <h1>{name}</h1> : title}
      <nav class="tabs" aria-label="Application">
        <a href={href.app(app)} aria-current={tab === "groups" ? "page" : undefined}>
          Groups
        </a>
        <a href={href.instances(app)} aria-current={tab === "instances" ? "page" : undefined}>
          Instances
        </a>
        <a href={href.channels(app)} aria-current={tab === "channels" ? "page" : undefined}>
          Channels and packages
        </a>
      </nav>
      {children}
    </div>
  )
}
