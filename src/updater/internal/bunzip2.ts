/**
 * A streaming bzip2 decoder in TypeScript, for machines without the `bzip2`
 * command. Input is pushed in any pieces; output is read in pieces of at most
 * 64 KiB, so a caller that stops reading (a size cap) stops the work, and
 * memory stays at one block (a 3.6 MB table) plus the compressed block.
 * Malformed input ends in an error message, never an exception.
 */

const blockMagic = [0x314159, 0x265359] as const
const endMagic = [0x177245, 0x385090] as const
const maxCodeLength = 20
const groupSize = 50
const outputPiece = 64 * 1024

const crcTable = (() => {
  const table = new Uint32Array(256)
  for (let i = 0; i < 256; i++) {
    let c = i << 24
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1
    table[i] = c >>> 0
  }
  return table
})()

/** What a read gives: output bytes, a need for more input, the end, or what is wrong with the data. */
export type Read =
  | { readonly _tag: "Bytes"; readonly bytes: Uint8Array }
  | { readonly _tag: "NeedInput" }
  | { readonly _tag: "Done" }
  | { readonly _tag: "Corrupt"; readonly reason: string }

const needInput: Read = { _tag: "NeedInput" }
const done: Read = { _tag: "Done" }
const corrupt = (reason: string): Read => ({ _tag: "Corrupt", reason })

/** A bzip2 decoder for one payload (one or more concatenated bzip2 streams). */
export class Bunzip2 {
  private input = new Uint8Array(0)
  private length = 0
  private byte = 0
  private bits = 0
  private live = 0
  private overrun = false
  private ended = false
  private streams = 0
  private state: "header" | "block" = "header"
  private level = 0
  private combined = 0
  private tt = new Uint32Array(0)
  private blockOpen = false
  // The block being written out: BWT position, symbols left, run-length state and CRC.
  private pending = 0
  private tPos = 0
  private last = -1
  private run = 0
  private repeat = 0
  private repeatByte = 0
  private crc = 0
  private blockCrc = 0

  /** Adds input bytes. */
  push(bytes: Uint8Array): void {
    // Drop what has been read, then grow geometrically so appends stay linear.
    const keep = this.length - this.byte
    if (this.byte > 0 && (this.byte > this.input.length / 2 || this.length + bytes.length > this.input.length)) {
      this.input.copyWithin(0, this.byte, this.length)
      this.length = keep
      this.byte = 0
    }
    if (this.length + bytes.length > this.input.length) {
      const grown = new Uint8Array(Math.max(this.input.length * 2, this.length + bytes.length, 1 << 16))
      grown.set(this.input.subarray(0, this.length))
      this.input = grown
    }
    this.input.set(bytes, this.length)
    this.length += bytes.length
  }

  /** Marks the end of the input. */
  end(): void {
    this.ended = true
  }

  private readBits(n: number): number {
    while (this.live < n) {
      if (this.byte < this.length) this.bits = (this.bits << 8) | this.input[this.byte++]!
      else {
        this.bits <<= 8
        this.overrun = true
      }
      this.live += 8
    }
    this.live -= n
    return (this.bits >>> this.live) & ((1 << n) - 1)
  }

  /** The next piece of output, or what is needed to make one. */
  read(): Read {
    for (;;) {
      if (this.pending > 0 || this.repeat > 0) return { _tag: "Bytes", bytes: this.writeOut() }
      if (this.blockOpen) {
        // A block was written out whole: check it.
        const crc = ~this.crc >>> 0
        if (crc !== this.blockCrc) return corrupt("block CRC mismatch")
        this.combined = (((this.combined << 1) | (this.combined >>> 31)) ^ crc) >>> 0
        this.blockOpen = false
      }
      const available = this.length - this.byte
      if (this.state === "header") {
        if (available < 4) {
          if (!this.ended) return needInput
          if (available === 0 && this.streams > 0) return done
          return corrupt(this.streams > 0 ? "trailing data after the end of the stream" : "truncated (no bzip2 header)")
        }
        const b = this.input
        const at = this.byte
        if (b[at] !== 0x42 || b[at + 1] !== 0x5a || b[at + 2] !== 0x68 || b[at + 3]! < 0x31 || b[at + 3]! > 0x39) {
          return corrupt(this.streams > 0 ? "trailing data after the end of the stream" : "not bzip2 data")
        }
        this.level = b[at + 3]! - 0x30
        this.byte += 4
        this.bits = 0
        this.live = 0
        this.combined = 0
        this.state = "block"
        continue
      }
      // A whole compressed block must be buffered: at most 20 bits for each of level * 100k symbols.
      if (!this.ended && available < this.level * 250_000 + 4096) return needInput
      const hi = this.readBits(24)
      const lo = this.readBits(24)
      if (hi === blockMagic[0] && lo === blockMagic[1]) {
        const error = this.readBlock()
        if (error !== undefined) return corrupt(this.overrun ? "truncated" : error)
        if (this.overrun) return corrupt("truncated")
        continue
      }
      if (hi === endMagic[0] && lo === endMagic[1]) {
        const stored = ((this.readBits(16) << 16) | this.readBits(16)) >>> 0
        if (this.overrun) return corrupt("truncated")
        if (stored !== this.combined) return corrupt("stream CRC mismatch")
        this.live -= this.live % 8
        // Unread whole bytes left in the bit buffer go back to the input.
        this.byte -= this.live / 8
        this.live = 0
        this.streams++
        this.state = "header"
        continue
      }
      return corrupt(this.overrun ? "truncated" : "bad block header")
    }
  }

  /** Reads one block's Huffman-coded symbols and undoes the MTF and BWT tables; the output is written lazily. */
  private readBlock(): string | undefined {
    this.blockCrc = ((this.readBits(16) << 16) | this.readBits(16)) >>> 0
    if (this.readBits(1) !== 0) return "randomised blocks are not supported"
    const origPtr = this.readBits(24)
    const used = this.readBits(16)
    const seqToUnseq = new Uint8Array(256)
    let inUse = 0
    for (let i = 0; i < 16; i++) {
      if (used & (0x8000 >> i)) {
        const bits = this.readBits(16)
        for (let j = 0; j < 16; j++) if (bits & (0x8000 >> j)) seqToUnseq[inUse++] = i * 16 + j
      }
    }
    if (inUse === 0) return "no symbols in use"
    const alphaSize = inUse + 2
    const groups = this.readBits(3)
    if (groups < 2 || groups > 6) return "bad number of Huffman tables"
    const selectorCount = this.readBits(15)
    if (selectorCount < 1) return "no selectors"
    const mtfGroups = [0, 1, 2, 3, 4, 5]
    const selectors = new Uint8Array(selectorCount)
    for (let i = 0; i < selectorCount; i++) {
      let j = 0
      while (this.readBits(1)) {
        if (++j >= groups) return "bad selector"
        if (this.overrun) return "truncated"
      }
      const v = mtfGroups[j]!
      for (; j > 0; j--) mtfGroups[j] = mtfGroups[j - 1]!
      mtfGroups[0] = v
      selectors[i] = v
    }
    const limits: Array<Int32Array> = []
    const bases: Array<Int32Array> = []
    const perms: Array<Uint16Array> = []
    const minLengths: Array<number> = []
    for (let t = 0; t < groups; t++) {
      const lengths = new Uint8Array(alphaSize)
      let current = this.readBits(5)
      for (let i = 0; i < alphaSize; i++) {
        for (;;) {
          if (current < 1 || current > maxCodeLength || this.overrun) return "bad Huffman code length"
          if (!this.readBits(1)) break
          current += this.readBits(1) ? -1 : 1
        }
        lengths[i] = current
      }
      let min = maxCodeLength
      let max = 0
      for (const l of lengths) {
        if (l < min) min = l
        if (l > max) max = l
      }
      const perm = new Uint16Array(alphaSize)
      const base = new Int32Array(maxCodeLength + 2)
      const limit = new Int32Array(maxCodeLength + 1).fill(-1)
      let p = 0
      for (let l = min; l <= max; l++) for (let s = 0; s < alphaSize; s++) if (lengths[s] === l) perm[p++] = s
      for (const l of lengths) base[l + 1]!++
      for (let l = 1; l < base.length; l++) base[l]! += base[l - 1]!
      let code = 0
      for (let l = min; l <= max; l++) {
        code += base[l + 1]! - base[l]!
        limit[l] = code - 1
        code <<= 1
      }
      for (let l = min + 1; l <= max; l++) base[l] = ((limit[l - 1]! + 1) << 1) - base[l]!
      limits.push(limit)
      bases.push(base)
      perms.push(perm)
      minLengths.push(min)
    }

    const maxBlock = this.level * 100_000
    if (this.tt.length < maxBlock) this.tt = new Uint32Array(maxBlock)
    const tt = this.tt
    const counts = new Int32Array(256)
    const mtf = new Uint8Array(256)
    for (let i = 0; i < 256; i++) mtf[i] = i
    const endOfBlock = inUse + 1
    let count = 0
    let selector = 0
    let left = 0
    let limit = limits[0]!
    let base = bases[0]!
    let perm = perms[0]!
    let min = 0
    let runLength = 0
    let runWeight = 1
    for (;;) {
      if (left === 0) {
        if (selector >= selectorCount) return "ran out of selectors"
        const g = selectors[selector++]!
        limit = limits[g]!
        base = bases[g]!
        perm = perms[g]!
        min = minLengths[g]!
        left = groupSize
      }
      left--
      let length = min
      let code = this.readBits(length)
      while (code > limit[length]!) {
        if (++length > maxCodeLength || this.overrun) return "bad Huffman code"
        code = (code << 1) | this.readBits(1)
      }
      const symbol = perm[code - base[length]!]!
      if (symbol <= 1) {
        // RUNA and RUNB spell a run length of the front symbol in bijective base 2.
        runLength += (symbol + 1) * runWeight
        runWeight <<= 1
        if (runLength > maxBlock) return "run longer than the block"
        continue
      }
      if (runLength > 0) {
        if (count + runLength > maxBlock) return "block longer than its size"
        const value = seqToUnseq[mtf[0]!]!
        counts[value]! += runLength
        tt.fill(value, count, count + runLength)
        count += runLength
        runLength = 0
        runWeight = 1
      }
      if (symbol === endOfBlock) break
      if (count >= maxBlock) return "block longer than its size"
      const index = symbol - 1
      const front = mtf[index]!
      mtf.copyWithin(1, 0, index)
      mtf[0] = front
      const value = seqToUnseq[front]!
      counts[value]!++
      tt[count++] = value
    }
    if (origPtr >= count) return "bad origin pointer"
    // Inverse BWT: each entry keeps its byte in the low 8 bits and the next position above.
    let sum = 0
    const starts = new Int32Array(256)
    for (let i = 0; i < 256; i++) {
      starts[i] = sum
      sum += counts[i]!
    }
    for (let i = 0; i < count; i++) {
      const value = tt[i]! & 0xff
      tt[starts[value]!]! |= i << 8
      starts[value]!++
    }
    this.tPos = tt[origPtr]! >>> 8
    this.pending = count
    this.blockOpen = true
    this.last = -1
    this.run = 0
    this.crc = 0xffffffff
    return undefined
  }

  /** Writes out up to 64 KiB of the current block, undoing the initial run-length coding. */
  private writeOut(): Uint8Array {
    const out = new Uint8Array(outputPiece)
    let n = 0
    let crc = this.crc
    const tt = this.tt
    while (n < outputPiece) {
      if (this.repeat > 0) {
        const k = Math.min(this.repeat, outputPiece - n)
        out.fill(this.repeatByte, n, n + k)
        for (let i = 0; i < k; i++) crc = (crc << 8) ^ crcTable[((crc >>> 24) ^ this.repeatByte) & 0xff]!
        n += k
        this.repeat -= k
        continue
      }
      if (this.pending === 0) break
      const entry = tt[this.tPos]!
      const value = entry & 0xff
      this.tPos = entry >>> 8
      this.pending--
      if (this.run === 4) {
        // After four equal bytes, the next one is a count of more of them.
        this.repeat = value
        this.repeatByte = this.last
        this.run = 0
        this.last = -1
        continue
      }
      if (value === this.last) this.run++
      else {
        this.run = 1
        this.last = value
      }
      out[n++] = value
      crc = (crc << 8) ^ crcTable[((crc >>> 24) ^ value) & 0xff]!
    }
    this.crc = crc
    return out.subarray(0, n)
  }
}
