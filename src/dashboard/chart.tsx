/**
 * A stacked area chart in plain SVG: how many machines were in each series
 * (a version, a status) at each point of a timeline. Drawn at the width of
 * its box, so text stays readable on a phone; a pointer over it shows the
 * numbers at that time.
 */
import { useEffect, useRef, useState } from "preact/hooks"
import * as Format from "./format.js"

/** One series of the chart. */
export interface Series {
  readonly key: string
  readonly label: string
  readonly colour: string
}

/** The chart's data: times and, per time, a count per series key. */
export interface ChartData {
  readonly times: ReadonlyArray<number>
  readonly values: ReadonlyArray<Readonly<Record<string, number>>>
}

const height = 200
const pad = { top: 10, right: 12, bottom: 24, left: 44 }

const useWidth = () => {
  const ref = useRef<HTMLDivElement>(null)
  const [width, setWidth] = useState(0)
  useEffect(() => {
    const box = ref.current
    if (box === null) return
    const measure = () => setWidth(Math.floor(box.getBoundingClientRect().width))
    measure()
    const observer = new ResizeObserver(measure)
    observer.observe(box)
    return () => observer.disconnect()
  }, [])
  return [ref, width] as const
}

const niceMax = (max: number): number => {
  if (max <= 4) return Math.max(1, max)
  const magnitude = 10 ** Math.floor(Math.log10(max))
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (max <= step * magnitude) return step * magnitude
  return 10 * magnitude
}

const timeLabel = (t: number, span: number): string => {
  const d = new Date(t)
  const hm = `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`
  if (span <= 36 * 3600_000) return hm
  return `${d.getDate()} ${d.toLocaleString("en-GB", { month: "short" })}`
}

/** The chart (see the module header). */
export const StackedAreaChart = ({ data, series, label }: { data: ChartData; series: ReadonlyArray<Series>; label: string }) => {
  const [ref, width] = useWidth()
  const [hover, setHover] = useState<number | undefined>(undefined)
  const n = data.times.length
  const innerW = Math.max(10, width - pad.left - pad.right)
  const innerH = height - pad.top - pad.bottom
  const totals = data.values.map((v) => series.reduce((sum, s) => sum + (v[s.key] ?? 0), 0))
  const yMax = niceMax(Math.max(0, ...totals))
  const x = (i: number) => pad.left + (n <= 1 ? innerW : (i / (n - 1)) * innerW)
  const y = (v: number) => pad.top + innerH - (v / yMax) * innerH

  const base = new Array<number>(n).fill(0)
  const areas = series.map((s) => {
    const lower = base.slice()
    const upper = data.values.map((v, i) => (base[i] = base[i]! + (v[s.key] ?? 0)))
    if (upper.every((u, i) => u === lower[i])) return null
    const top = upper.map((u, i) => `${x(i).toFixed(1)},${y(u).toFixed(1)}`)
    const bottom = lower.map((l, i) => `${x(i).toFixed(1)},${y(l).toFixed(1)}`).reverse()
    return <path key={s.key} d={`M${top.join("L")}L${bottom.join("L")}Z`} fill={s.colour} fill-opacity="0.85" />
  })

  const span = n < 2 ? 0 : data.times[n - 1]! - data.times[0]!
  const ticks = n < 2 ? [] : [0, Math.floor((n - 1) / 2), n - 1]
  const onMove = (event: PointerEvent) => {
    const box = (event.currentTarget as SVGElement).getBoundingClientRect()
    const at = event.clientX - box.left - pad.left
    if (n === 0) return
    setHover(Math.max(0, Math.min(n - 1, Math.round((at / innerW) * (n - 1)))))
  }
  const shown = hover === undefined ? undefined : data.values[hover]

  return (
    <div class="chart" ref={ref}>
      {width === 0 ? null : (
        <svg
          width={width}
          height={height}
          role="img"
          aria-label={label}
          onPointerMove={onMove}
          onPointerLeave={() => setHover(undefined)}
        >
          {[0, 0.5, 1].map((f) => (
            <g key={f}>
              <line x1={pad.left} x2={pad.left + innerW} y1={y(yMax * f)} y2={y(yMax * f)} class="grid" />
              <text x={pad.left - 6} y={y(yMax * f) + 4} text-anchor="end" class="axis">
                {Format.count(Math.round(yMax * f))}
              </text>
            </g>
          ))}
          {areas}
          {ticks.map((i, k) => (
            <text
              key={i}
              x={x(i)}
              y={height - 6}
              text-anchor={k === 0 ? "start" : k === ticks.length - 1 ? "end" : "middle"}
              class="axis"
            >
              {timeLabel(data.times[i]!, span)}
            </text>
          ))}
          {hover === undefined ? null : <line x1={x(hover)} x2={x(hover)} y1={pad.top} y2={pad.top + innerH} class="cursor" />}
        </svg>
      )}
      {hover === undefined || shown === undefined ? null : (
        <div class={`chart-tip ${x(hover) > width / 2 ? "left" : "right"}`} style={{ left: `${x(hover)}px` }}>
          <strong>{Format.time(new Date(data.times[hover]!).toISOString())}</strong>
          {series.filter((s) => (shown[s.key] ?? 0) > 0).slice().reverse().map((s) => (
            <span key={s.key}>
              <span class="dot" style={{ background: s.colour }} />
              {s.label}: {Format.count(shown[s.key] ?? 0)}
            </span>
          ))}
        </div>
      )}
    </div>
  )
}
