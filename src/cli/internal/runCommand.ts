/**
 * How every command of this package ends: a typed failure prints one line
 * (`serve-package: <what went wrong>`) and exits with the status the command
 * documents for it; usage errors exit 2 after @effect/cli has printed them
 * (once: the runtime's own error reporting is off); a defect exits 1; a stop
 * by SIGINT/SIGTERM runs every finalizer and exits with the command's
 * `interrupted` status.
 */
import { ValidationError } from "@effect/cli"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit, Option } from "effect"

/** Exit statuses shared by every command; each command documents its own from 3 up. */
export const ExitStatus = {
  Ok: 0,
  Unexpected: 1,
  Usage: 2
} as const

/** What a command says about how it ends. */
export interface Ending<E> {
  /** The command's name, the prefix of its error lines. */
  readonly name: string
  /** The exit status of each typed failure (an exhaustive match over `E`). */
  readonly exitStatus: (error: E) => number
  /** The exit status after a stop by signal, once finalizers have run. */
  readonly interrupted: number
}

/** How a run ended: the exit status, and the line to print on stderr, if any. */
export interface Outcome {
  readonly status: number
  readonly message: Option.Option<string>
}

const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error && typeof error.message === "string" &&
    error.message.length > 0
    ? error.message
    : String(error)

const firstLine = (text: string): string => text.split("\n", 1)[0] ?? text

/** The outcome of a command's exit. */
export const outcome = <E>(ending: Ending<E>, exit: Exit.Exit<unknown, E | ValidationError.ValidationError>): Outcome => {
  if (Exit.isSuccess(exit)) return { status: ExitStatus.Ok, message: Option.none() }
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (ValidationError.isValidationError(error)) return { status: ExitStatus.Usage, message: Option.none() }
    return {
      status: ending.exitStatus(error),
      message: Option.some(`${ending.name}: ${firstLine(messageOf(error))}`)
    }
  }
  if (Cause.isInterruptedOnly(exit.cause)) return { status: ending.interrupted, message: Option.none() }
  const defect = Cause.dieOption(exit.cause)
  return {
    status: ExitStatus.Unexpected,
    message: Option.some(
      `${ending.name}: unexpected error: ${
        firstLine(Option.match(defect, { onNone: () => Cause.pretty(exit.cause), onSome: messageOf }))
      }`
    )
  }
}

/** Runs a fully provided command program as the process's main program (see the module header). */
export const runCommand = <E>(
  ending: Ending<E>,
  program: Effect.Effect<void, E | ValidationError.ValidationError>
): void =>
  NodeRuntime.runMain(program, {
    disableErrorReporting: true,
    // Commands choose their own log lines (on stderr); the runtime's pretty
    // logger would print each one again on stdout.
    disablePrettyLogger: true,
    teardown: (exit, onExit) => {
      const result = outcome(ending, exit as Exit.Exit<unknown, E | ValidationError.ValidationError>)
      if (Option.isSome(result.message)) process.stderr.write(result.message.value + "\n")
      onExit(result.status)
    }
  })
