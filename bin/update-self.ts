import "../src/cli/internal/smallHeap.js"
import { runCommand } from "../src/cli/internal/runCommand.js"
import { endingFor, program } from "../src/cli/UpdateSelf.js"

runCommand(endingFor(process.argv), program(process.argv))
