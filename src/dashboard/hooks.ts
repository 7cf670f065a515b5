/** Loading data from the API into a view: once, on a change of inputs, and every few seconds while visible. */
import { useCallback, useEffect, useRef, useState } from "preact/hooks"
import { ApiFailure } from "./api.js"

/** What a view knows of one API read. */
export interface Loaded<A> {
  /** The last answer, kept while a reload runs or after a reload failed. */
  readonly data: A | undefined
  /** Why the last read failed; cleared by the next success. */
  readonly error: ApiFailure | undefined
  readonly loading: boolean
  /** Reads again now. */
  readonly reload: () => void
}

const asFailure = (e: unknown): ApiFailure =>
  e instanceof ApiFailure ? e : new ApiFailure(0, "Error", e instanceof Error ? e.message : String(e))

/**
 * Reads `load()` when `key` changes, and again every `refreshMs` while the
 * page is visible (never two reads at once; answers to an old key are dropped).
 */
export const useLoad = <A>(load: () => Promise<A>, key: string, refreshMs?: number): Loaded<A> => {
  const [state, setState] = useState<{ key: string; data: A | undefined; error: ApiFailure | undefined; loading: boolean }>(
    { key, data: undefined, error: undefined, loading: true }
  )
  const loadRef = useRef(load)
  loadRef.current = load
  const running = useRef(false)
  const current = useRef(key)
  current.current = key

  const run = useCallback(() => {
    if (running.current) return
    running.current = true
    const asked = current.current
    setState((s) => (s.key === asked ? { ...s, loading: true } : { key: asked, data: undefined, error: undefined, loading: true }))
    loadRef.current().then(
      (data) => {
        running.current = false
        if (current.current === asked) setState({ key: asked, data, error: undefined, loading: false })
        else run()
      },
      (e: unknown) => {
        running.current = false
        if (current.current === asked) setState((s) => ({ ...s, error: asFailure(e), loading: false }))
        else run()
      }
    )
  }, [])

  useEffect(run, [key])

  useEffect(() => {
    if (refreshMs === undefined) return
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") run()
    }, refreshMs)
    return () => clearInterval(timer)
  }, [key, refreshMs])

  const fresh = state.key === key
  return {
    data: fresh ? state.data : undefined,
    error: fresh ? state.error : undefined,
    loading: !fresh || state.loading,
    reload: run
  }
}

/** A write the user started: whether it runs, and why it failed. */
export interface Action {
  readonly busy: boolean
  readonly error: ApiFailure | undefined
  /** Runs the write; resolves to its answer, or undefined when it failed (the error is kept). */
  readonly run: <A>(write: () => Promise<A>) => Promise<A | undefined>
  readonly clear: () => void
}

/** State for a button or form that writes through the API. */
export const useAction = (): Action => {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<ApiFailure | undefined>(undefined)
  const run = useCallback(async <A>(write: () => Promise<A>): Promise<A | undefined> => {
    setBusy(true)
    setError(undefined)
    try {
      return await write()
    } catch (e) {
      setError(asFailure(e))
      return undefined
    } finally {
      setBusy(false)
    }
  }, [])
  return { busy, error, run, clear: useCallback(() => setError(undefined), []) }
}
