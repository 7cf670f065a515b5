/** JSON over plain HTTP/1.1, one request per connection, for tests of the fleet server. */
import * as Http from "node:http"

/** An answer as a test sees it. */
export interface Answer {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly text: string
  readonly json: any
}

/** One request over a fresh connection. */
export const request = (
  base: string,
  method: string,
  path: string,
  options: {
    readonly token?: string | undefined
    readonly json?: unknown
    readonly body?: string | Buffer | undefined
    readonly headers?: Record<string, string>
  } = {}
): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers }
    if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
    let body = options.body
    if (options.json !== undefined) {
      body = JSON.stringify(options.json)
      headers["content-type"] ??= "application/json"
    }
    if (body !== undefined && headers["transfer-encoding"] === undefined) headers["content-length"] ??= String(Buffer.byteLength(body))
    const req = Http.request(new URL(path, base), { method, headers, agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        let json: unknown
        try {
          json = text === "" ? undefined : JSON.parse(text)
        } catch {
          json = undefined
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
      })
      res.on("error", reject)
    })
    req.on("error", reject)
    if (body !== undefined) req.write(body)
    req.end()
  })

