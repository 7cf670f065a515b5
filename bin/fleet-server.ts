import { runCommand } from "../src/cli/internal/runCommand.js"
import { ending, program } from "../src/cli/FleetServer.js"

runCommand(ending, program(process.argv))
