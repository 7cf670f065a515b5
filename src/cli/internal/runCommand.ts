/**
 * How every command of this package ends: a typed failure prints one line
 * (`serve-package: <what went wrong>`) and exits with the status the command
 * documents for it; a usage error (see `commandLine.ts`) prints its one line
 * and exits 2; a defect exits 1; a stop by SIGINT/SIGTERM runs every
 * finalizer and exits with the command's `interrupted` status. The runtime's
 * own error reporting is off, so nothing is printed twice.
 */
import { HelpDoc, ValidationError } from "@effect/cli"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit, Option } from "effect"
import { UsageError } from "./commandLine.js"

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

/** What a command's program may fail with besides its own errors. */
export type CommandLineError = UsageError | ValidationError.ValidationError

/** The outcome of a command's exit. */
export const outcome = <E>(ending: Ending<E>, exit: Exit.Exit<unknown, E | CommandLineError>): Outcome => {
  if (Exit.isSuccess(exit)) return { status: ExitStatus.Ok, message: Option.none() }
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error instanceof UsageError) {
      return { status: ExitStatus.Usage, message: Option.some(`${ending.name}: ${error.message}`) }
    }
    if (ValidationError.isValidationError(error)) {
      // Only a program not parsed by commandLine.run gets here; its report's first line still says what is wrong.
      const text = HelpDoc.toAnsiText(error.error).replace(/\u001b\[[0-9;]*m/g, "").trim()
      return {
        status: ExitStatus.Usage,
        message: Option.some(`${ending.name}: ${firstLine(text === "" ? "invalid command line" : text)}`)
      }
    }
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
  program: Effect.Effect<void, E | CommandLineError>
): void =>
  NodeRuntime.runMain(program, {
    disableErrorReporting: true,
    // Commands choose their own log lines (on stderr); the runtime's pretty
    // logger would print each one again on stdout.
    disablePrettyLogger: true,
    teardown: (exit, onExit) => {
      const result = outcome(ending, exit as Exit.Exit<unknown, E | CommandLineError>)
      if (Option.isSome(result.message)) process.stderr.write(result.message.value + "\n")
      onExit(result.status)
    }
  })
