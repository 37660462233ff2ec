// HdrHistogram interval logs through hdr-histogram-js, HdrHistogram's
// JavaScript port, for the hdr_js test (tests/bench/hdr_js.py):
//   node hlog_check.mjs read FILE   prints what hdr-histogram-js reads in FILE
//   node hlog_check.mjs write FILE  writes a log of its own (other layouts)
// What `read` prints, as tests/bench/hdr_writer.c prints it from hdr.c:
//   {"start": StartTime, "intervals": [{tag, start, length, count, p50, p99, max}],
//    "totals": {TAG: {count, p50, p99, max}}}
// start is seconds from StartTime; "" is no tag; totals add each tag's
// intervals into a 1..3.6e9, 3-digit histogram (salvo-bench's layout).
import { readFileSync, writeFileSync } from 'node:fs';
import hdr from 'hdr-histogram-js';

const BITS = 64; // counts past 2^32 (Float64Array: exact to 2^53)

function summary(h) {
  // max: the 100th percentile, HdrHistogram's getMaxValue(). hdr-histogram-js's
  // maxValue property adds unitMagnitudeMask again on decode when lowest > 1.
  return {
    count: h.totalCount,
    p50: h.getValueAtPercentile(50),
    p99: h.getValueAtPercentile(99),
    max: h.totalCount === 0 ? 0 : h.getValueAtPercentile(100),
  };
}

function read(path) {
  const reader = new hdr.HistogramLogReader(readFileSync(path, 'utf8'), BITS);
  const intervals = [];
  const totals = {};
  let h;
  while ((h = reader.nextIntervalHistogram()) !== null) {
    const tag = h.tag === 'NO TAG' ? '' : h.tag; // hdr-histogram-js's NO_TAG
    const start = reader.startTimeSec ?? 0;
    intervals.push({
      tag,
      start: h.startTimeStampMsec / 1000 - start,
      length: (h.endTimeStampMsec - h.startTimeStampMsec) / 1000,
      ...summary(h),
    });
    if (!(tag in totals))
      totals[tag] = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3600000000,
                                numberOfSignificantValueDigits: 3, autoResize: false, bitBucketSize: BITS });
    totals[tag].add(h);
  }
  const out = { start: reader.startTimeSec ?? 0, intervals, totals: {} };
  for (const [tag, t] of Object.entries(totals))
    out.totals[tag] = summary(t);
  console.log(JSON.stringify(out));
}

// Layouts other than salvo-bench's, an auto-resizing one (hdr-histogram-js's
// default), counts past 2^32, an empty interval; StartTime but no BaseTime,
// so times are relative (Java's reader rule: START more than a year before
// StartTime); a blank line after StartTime (hdr-histogram-js writes one).
function write(path) {
  let text = '';
  const writer = new hdr.HistogramLogWriter((s) => { text += s; });
  writer.outputComment('[written by hdr-histogram-js for salvo\'s hdr_js test]');
  writer.outputLogFormatVersion();
  writer.outputStartTime(1700000123456);
  writer.outputLegend();
  const make = (lowest, highest, digits, autoResize = false) => hdr.build({
    lowestDiscernibleValue: lowest, highestTrackableValue: highest, numberOfSignificantValueDigits: digits,
    autoResize, bitBucketSize: BITS });
  const a = make(1000, 1000000000, 2);
  for (let i = 1; i <= 1000; i++)
    a.recordValue(i * 997);
  a.recordValueWithCount(500000000, 3);
  a.tag = 'js';
  const b = hdr.build({ bitBucketSize: BITS }); // 1..2, 3 digits, resizes itself
  for (let v = 1; v <= 20000; v += 7)
    b.recordValue(v);
  b.recordValue(123456789);
  const c = make(1, 3600000000, 5);
  for (let v = 1; v < 3000000000; v = Math.ceil(v * 1.01))
    c.recordValue(v);
  c.tag = 'js';
  const d = make(16, 1000000, 1);
  d.recordValueWithCount(5000, 3000000000 * 2);
  d.recordValue(999999);
  const e = make(1, 3600000000, 3);
  e.tag = 'idle';
  const intervals = [[a, 0, 1], [b, 1, 2.5], [c, 2.5, 3.25], [d, 3.25, 4.25], [e, 4.25, 5]];
  for (const [h, start, end] of intervals)
    writer.outputIntervalHistogram(h, start, end, 1000);
  writeFileSync(path, text);
}

const [mode, path] = process.argv.slice(2);
if (mode === 'read' && path)
  read(path);
else if (mode === 'write' && path)
  write(path);
else {
  console.error('usage: node hlog_check.mjs read|write FILE');
  process.exit(2);
}
