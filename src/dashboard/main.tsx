/**
 * The fleet dashboard: a single page served by fleet-server at `/`, talking
 * to the admin API only, with the token the operator signs in with. The
 * views follow the URL's fragment (`route.ts`).
 */
import { render } from "preact"
import { useEffect, useState } from "preact/hooks"
import { api, ApiFailure, onUnauthorized } from "./api.js"
import { ErrorMessage } from "./components.js"
import { href, type Route, useRoute } from "./route.js"
import { keepRole, keepToken, SessionContext, type SessionInfo, stored } from "./session.js"
import "./style.css"
import { ActivityView } from "./views/Activity.js"
import { AppsView, AppView } from "./views/Apps.js"
import { ChannelsView } from "./views/Channels.js"
import { GroupView } from "./views/Group.js"
import { InstanceView } from "./views/Instance.js"
import { InstancesView } from "./views/Instances.js"
import { SignIn } from "./views/SignIn.js"

const View = ({ route }: { route: Route }) => {
  switch (route.view) {
    case "apps":
      return <AppsView />
    case "app":
      return <AppView app={route.app} />
    case "group":
      return <GroupView app={route.app} name={route.group} />
    case "instances":
      return <InstancesView app={route.app} params={route.params} />
    case "instance":
      return <InstanceView app={route.app} machineId={route.machineId} />
    case "channels":
      return <ChannelsView app={route.app} />
    case "activity":
      return <ActivityView />
    case "notFound":
      return (
        <div class="page">
          <h1>Not found</h1>
          <p>
            There is no page at <code>{route.path}</code>. <a href={href.apps()}>Go to the applications</a>.
          </p>
        </div>
      )
  }
}

const Shell = ({ session }: { session: SessionInfo }) => {
  const route = useRoute()
  const section = route.view === "activity" ? "activity" : "apps"
  useEffect(() => scrollTo(0, 0), [route.view, "app" in route ? route.app : ""])
  return (
    <SessionContext.Provider value={session}>
      <header class="top">
        <a class="brand" href={href.apps()}>
          fleet-server
        </a>
        <nav class="main-nav" aria-label="Main">
          <a href={href.apps()} aria-current={section === "apps" ? "page" : undefined}>
            Applications
          </a>
          <a href={href.activity()} aria-current={section === "activity" ? "page" : undefined}>
            Activity
          </a>
        </nav>
        <span class="who" title={session.name === "" ? undefined : `token: ${session.name}`}>
          <span class={`role role-${session.role}`} data-role={session.role}>
            {session.role}
          </span>
          <button type="button" class="link" onClick={session.signOut}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main">
        <View route={route} />
      </main>
    </SessionContext.Provider>
  )
}

type State =
  | { readonly step: "checking" }
  | { readonly step: "signedOut"; readonly error?: ApiFailure | undefined }
  | { readonly step: "signedIn"; readonly role: SessionInfo["role"]; readonly name: string }

// A token kept from before this load is sent at once; its role as last seen
// shows the views while the server is asked again.
const initial = (): State => {
  const kept = stored()
  if (kept === undefined) return { step: "signedOut" }
  keepToken(kept.token)
  return kept.role === undefined ? { step: "checking" } : { step: "signedIn", role: kept.role, name: kept.name }
}

const App = () => {
  const [state, setState] = useState<State>(initial)

  const signIn = async (token: string): Promise<ApiFailure | undefined> => {
    keepToken(token)
    try {
      const session = await api.session()
      keepRole(session.role, session.name)
      setState({ step: "signedIn", role: session.role, name: session.name })
      return undefined
    } catch (e) {
      keepToken(undefined)
      const failure = e instanceof ApiFailure ? e : new ApiFailure(0, "Error", String(e))
      setState({ step: "signedOut", error: failure })
      return failure
    }
  }
  const signOut = () => {
    keepToken(undefined)
    setState({ step: "signedOut" })
  }

  useEffect(() => {
    const kept = stored()
    if (kept !== undefined) void signIn(kept.token)
    return onUnauthorized((failure) => {
      keepToken(undefined)
      setState({ step: "signedOut", error: failure })
    })
  }, [])

  if (state.step === "checking") return <p class="muted loading">Signing in…</p>
  if (state.step === "signedOut") {
    return (
      <SignIn onSignIn={signIn}>
        <ErrorMessage error={state.error} />
      </SignIn>
    )
  }
  return <Shell session={{ role: state.role, name: state.name, signOut }} />
}

render(<App />, document.getElementById("app")!)
