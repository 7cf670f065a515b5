/** Paths and contents of the files under fixtures/, for tests. */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

/** The project's fixtures directory. */
export const fixturesDir = fileURLToPath(new URL("../fixtures", import.meta.url))

/** The absolute path of a fixture. */
export const fixturePath = (relative: string): string => Path.join(fixturesDir, relative)

/** The text of a fixture. */
export const readFixture = (relative: string): string => Fs.readFileSync(fixturePath(relative), "utf8")

/** Every `.xml` fixture below `dir`, as paths relative to the fixtures directory. */
export const xmlFixtures = (dir: string): Array<string> =>
  (Fs.readdirSync(fixturePath(dir), { recursive: true, encoding: "utf8" }) as Array<string>)
    .filter((name) => name.endsWith(".xml"))
    .map((name) => Path.join(dir, name))
    .sort()
