import { main } from "../src/cli/ServePackage.js"

main(process.argv)
