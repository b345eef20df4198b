import { describe, it, expect } from '@jest/globals';
import { ganttText, mermaidGantt, stepPhases, timedPhases } from '../../actions/lib/summary-gantt.js';
import { formatThroughput } from '../../actions/lib/transfer-progress.js';

const T0 = Date.parse('2026-11-30T18:00:00.000Z'); // 1796061600000

/** A task line as the chart writes it: a name Mermaid reads as text, then `:`, optional tag, id, start, end. */
const TASK_LINE = /^ {2}[^:#;%`\n]+ :(?:crit, )?p\d+, \d+, \d+$/;
const KEYWORD_START = /^ {2}(?:gantt|dateformat|axisformat|tickinterval|includes|excludes|todaymarker|weekday|title|section|click|call|href|acc|\d)/i;

describe('the phase timeline chart', () => {
  it('draws a fixed timing set as exactly this Mermaid Gantt block', () => {
    const chart = mermaidGantt(
      [
        { name: 'preflight', startMs: T0, endMs: T0 + 1_200, section: 'labforge' },
        { name: 'boot', startMs: T0 + 1_200, endMs: T0 + 31_700, section: 'packer' },
        { name: 'provision', startMs: T0 + 31_700, endMs: T0 + 95_000, section: 'packer', status: 'failed' },
        { name: 'package', startMs: T0 + 95_000, endMs: T0 + 95_000, section: 'labforge' },
      ],
      { title: 'Phase timeline' },
    );
    expect(chart).toBe(
      [
        '```mermaid',
        'gantt',
        '  title Phase timeline',
        '  dateFormat x',
        '  axisFormat %H:%M:%S',
        '  todayMarker off',
        '  section labforge',
        '  preflight :p1, 1796061600000, 1796061601200',
        '  section packer',
        '  boot :p2, 1796061601200, 1796061631700',
        '  provision :crit, p3, 1796061631700, 1796061695000',
        '  section labforge',
        '  package :p4, 1796061695000, 1796061695000',
        '```',
        '',
      ].join('\n'),
    );
  });

  it('keeps a hostile phase name on one task line that can only be a task name', () => {
    const hostile = [
      'boot : crit, x, 0, 1\nsection pwned\n  click p1 href "https://evil.example"',
      '```\n<script>alert(1)</script>',
      'section injected',
      'Click p1 call alert()',
      '%%{init: {"theme":"dark"}}%%',
      'a%% comment',
      '# hidden',
      '2026-01-01 looks like a date',
      'semi;colon',
      '\u2028line\u0085separators\r\ttabs',
      '',
    ];
    const chart = mermaidGantt(hostile.map((name, i) => ({ name, startMs: T0 + i * 1000, endMs: T0 + i * 1000 + 500 })));
    const lines = chart.split('\n');
    // the block is the header, one task line per phase, and the closing fence: nothing else
    expect(lines.slice(0, 5)).toEqual(['```mermaid', 'gantt', '  dateFormat x', '  axisFormat %H:%M:%S', '  todayMarker off']);
    expect(lines.slice(-2)).toEqual(['```', '']);
    const tasks = lines.slice(5, -2);
    expect(tasks).toHaveLength(hostile.length);
    for (const t of tasks) {
      expect(t).toMatch(TASK_LINE);
      expect(t).not.toMatch(KEYWORD_START);
    }
    expect(chart.match(/```/g)).toHaveLength(2);
    expect(tasks[0]).toBe('  boot crit, x, 0, 1 section pwned click p1 href https //evil… :p1, 1796061600000, 1796061600500');
    expect(tasks[2]).toBe('  · section injected :p3, 1796061602000, 1796061602500');
    expect(tasks[7]).toBe('  · 2026-01-01 looks like a date :p8, 1796061607000, 1796061607500');
    expect(tasks[10]).toBe('  (unnamed) :p11, 1796061610000, 1796061610500');
  });

  it('sanitizes titles and section names like task names, and keeps letters of any script', () => {
    expect(ganttText('title: x; y')).toBe('· title x y');
    expect(ganttText('Übersicht – démarrage')).toBe('Übersicht démarrage');
    expect(ganttText('x'.repeat(100))).toHaveLength(60);
    const chart = mermaidGantt([{ name: 'a', startMs: T0, endMs: T0 + 1, section: 'excludes weekends' }], { title: 'dateFormat YYYY\n#' });
    expect(chart).toContain('\n  title · dateFormat YYYY\n');
    expect(chart).toContain('\n  section · excludes weekends\n');
  });

  it('draws nothing without a phase, and never a bar that ends before it starts', () => {
    expect(mermaidGantt([])).toBe('');
    expect(mermaidGantt([{ name: 'x', startMs: Number.NaN, endMs: 1 }])).toBe('');
    expect(mermaidGantt([{ name: 'x', startMs: T0 + 10, endMs: T0 }])).toContain('  x :p1, 1796061600010, 1796061600010\n');
  });

  it('takes the bars from a step timeline (skipped steps left out) and from timed phases', () => {
    const steps = [
      { step: 'boot', startedAt: '2026-11-30T18:00:00.000Z', seconds: 21.5, status: 'ok' as const },
      { step: 'seed', startedAt: '2026-11-30T18:00:21.500Z', seconds: 0, status: 'skipped' as const },
      { step: 'init', startedAt: '2026-11-30T18:00:21.500Z', seconds: 3, status: 'cancelled' as const },
    ];
    expect(stepPhases(steps, 'warm')).toEqual([
      { name: 'boot', startMs: T0, endMs: T0 + 21_500, status: 'ok', section: 'warm' },
      { name: 'init', startMs: T0 + 21_500, endMs: T0 + 24_500, status: 'cancelled', section: 'warm' },
    ]);
    expect(timedPhases([{ phase: 'init', seconds: 0 }, { phase: 'validate', seconds: 1.5, startedAt: '2026-11-30T18:00:00.000Z' }])).toEqual([
      { name: 'validate', startMs: T0, endMs: T0 + 1_500, status: 'ok' },
    ]);
  });
});

describe('the upload throughput line', () => {
  it('gives MiB/s over the upload phase with the bytes and seconds', () => {
    expect(formatThroughput(25 * 1024 * 1024, 2)).toBe('12.5 MiB/s (26214400 bytes in 2.00 s)');
    expect(formatThroughput(0, 0)).toBe('– MiB/s (0 bytes in 0.00 s)');
  });
});
