/** The EXIT STATUS section of a command's `--help`, from the command's table of statuses. */
import { HelpDoc } from "@effect/cli"

/** One documented exit status and what it means. */
export type ExitStatusRow = readonly [status: number, meaning: string]

/** `--help`'s footer listing every exit status of a command. */
export const exitStatusHelp = (rows: ReadonlyArray<ExitStatusRow>): HelpDoc.HelpDoc =>
  HelpDoc.blocks([
    HelpDoc.h1("EXIT STATUS"),
    HelpDoc.p(rows.map(([status, meaning]) => `${String(status).padStart(3)}  ${meaning}`).join("\n"))
  ])
