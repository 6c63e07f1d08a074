// The browser half of the dashboard's end-to-end test (test_dashboard.c runs it): opens the
// page a running `tapestry run` serves, in Debian's headless Chromium driven by playwright-core,
// and checks what an operator would see.
//
//   node check.mjs <url> <screenshot.png> <scenario.json>
//
// scenario.json (written by the C test, one per scenario):
//   resources   {address: status}: exactly the resources the graph must show, with their
//               status ("in-sync", "drifted", "failed", "pending", "retained")
//   phases      {phase: count} (optional): how many resources each phase column holds
//   providers   {provider: resources} (optional): the provider health rows, each with its
//               managed resources, API calls made and no failing state
//   revision    {applied, message, author}: the applied commit, its subject line and author
//   run         {actions, summary} (optional): the newest run, opened, lists this many
//               per-action results and its plan ends with this summary line
//   select      an address to click: the detail panel, the events (and, with
//               select_has_logs, the log lines) must follow it
//   drift       {address, live, command: [argv...]}: the command changes address behind
//               Tapestry's back; the page must then show it as drifted (the others
//               unchanged), without being reloaded, and its detail the live value
//   timeout_ms  how long each expectation may take to appear (the page polls every 3 s)
//
// The page may only talk to the controller, and only read: any other request, and any
// request but GET, fails the test. playwright-core is loaded from TAPESTRY_DASHBOARD_NODE_DIR
// (default ~/.cache/tapestry/dashboard-test, where `npm ci` installed
// tests/dashboard/package-lock.json); the browser is TAPESTRY_CHROMIUM (default
// /usr/bin/chromium). Exit 0: every check passed; 1: a check failed (the screenshot shows the
// page at that moment); 2: usage or set-up problem.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir, homedir } from 'node:os';
import { dirname, join } from 'node:path';

const [url, shot, scenarioPath] = process.argv.slice(2);
if (!url || !shot || !scenarioPath) {
  console.error('usage: node check.mjs <url> <screenshot.png> <scenario.json>');
  process.exit(2);
}
const scenario = JSON.parse(readFileSync(scenarioPath, 'utf8'));
const timeout = scenario.timeout_ms || 30000;
const nodeDir =
  process.env.TAPESTRY_DASHBOARD_NODE_DIR || join(homedir(), '.cache/tapestry/dashboard-test');
const chromiumPath = process.env.TAPESTRY_CHROMIUM || '/usr/bin/chromium';

let chromium;
try {
  ({ chromium } = createRequire(join(nodeDir, 'package.json'))('playwright-core'));
} catch (e) {
  console.error(`check.mjs: playwright-core is not installed in ${nodeDir} (${e.message})`);
  process.exit(2);
}

const log = (msg) => console.log(`dashboard: ${msg}`);
const origin = new URL(url).origin;
const profile = mkdtempSync(join(tmpdir(), 'tapestry-chromium-'));
const outside = []; // requests the page tried to make beyond the controller
const writes = []; // requests other than GET (the page is read-only)
const pageErrors = [];
const PHASES = ['infrastructure', 'ingestion', 'warehouse', 'transformation', 'syncing'];
let loads = 0; // main-frame navigations: the page must refresh itself, never reload
let browser;
let page;

// What the graph shows: {address: status}.
async function shown() {
  return page.$$eval('#phases .node', (nodes) =>
    Object.fromEntries(
      nodes.map((n) => [n.getAttribute('data-address'), n.getAttribute('data-status')])
    )
  );
}

// The graph's phase columns in order: [[phase, number of resources in it]].
async function phaseColumns() {
  return page.$$eval('#phases .phase', (cols) =>
    cols.map((c) => [c.getAttribute('data-phase'), c.querySelectorAll('.node').length])
  );
}

// The provider health table: {provider: {resources, calls, errors, state}}.
async function providerRows() {
  return page.$$eval('#providers-table tbody tr', (trs) =>
    Object.fromEntries(
      trs.map((tr) => {
        const cells = tr.querySelectorAll('td');
        const num = (i) => Number((cells[i] ? cells[i].textContent : '').trim().split(' ')[0]);
        const dot = tr.querySelector('.dot');
        return [
          tr.getAttribute('data-provider'),
          {
            resources: num(1),
            calls: num(2),
            errors: num(3),
            state: dot && dot.getAttribute('data-state')
          }
        ];
      })
    )
  );
}

function same(a, b) {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

// Polls until pred() is true; fails with what() describing the last state seen.
async function until(label, pred, what) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms: ${label}\n${await what()}`);
    await page.waitForTimeout(250);
  }
}

async function expectResources(want, label) {
  let last = {};
  await until(
    label,
    async () => same((last = await shown()), want),
    async () =>
      `  want: ${JSON.stringify(want, null, 1)}\n  shown: ${JSON.stringify(last, null, 1)}`
  );
  log(`${label}: ${Object.keys(want).length} resources with the expected status`);
}

async function text(selector) {
  return (await page.locator(selector).first().textContent()) || '';
}

async function main() {
  // Debian's Chromium, offline: nothing in the background may try to reach the network; a
  // fresh profile (playwright passes it as --user-data-dir) so no earlier state leaks in
  const context = (browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync'
    ]
  }));
  await context.route('**/*', (route) => {
    const u = route.request().url();
    const method = route.request().method();
    if (method !== 'GET') {
      writes.push(`${method} ${u}`);
      return route.abort();
    }
    if (new URL(u).origin === origin || u.startsWith('data:')) return route.continue();
    outside.push(u);
    return route.abort();
  });
  page = await context.newPage();
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) loads++;
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    // a 404 from an endpoint this controller does not serve is expected; anything else
    // (an exception, a Content-Security-Policy violation) is a defect of the page
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(m.text());
  });

  const resp = await page.goto(url, { waitUntil: 'domcontentloaded' });
  if (!resp || resp.status() !== 200) throw new Error(`GET ${url}: ${resp && resp.status()}`);
  if (!/text\/html/.test(resp.headers()['content-type'] || ''))
    throw new Error(`GET ${url}: content type ${resp.headers()['content-type']}`);
  log(`page loaded: ${await page.title()}`);

  // every resource, with the right status
  await expectResources(scenario.resources, 'initial state');
  await until(
    'the header says the controller is healthy',
    async () => /healthy/.test(await text('#health')),
    async () => `  header: ${await text('#health')}`
  );

  // the graph by phase: the pipeline's five phases, in order, each with its resources
  {
    let cols = [];
    await until(
      'the graph shows the five phases in order',
      async () => {
        cols = await phaseColumns();
        return PHASES.every((p, i) => cols[i] && cols[i][0] === p);
      },
      async () => `  columns: ${JSON.stringify(cols)}`
    );
    if (scenario.phases) {
      const want = Object.entries(scenario.phases).sort();
      const got = cols.filter(([, n]) => n > 0).sort();
      if (JSON.stringify(want) !== JSON.stringify(got)) {
        const w = JSON.stringify(want);
        throw new Error(`resources by phase: want ${w}, shown ${JSON.stringify(got)}`);
      }
    }
    log(`phases: ${cols.map(([p, n]) => `${p} ${n}`).join(', ')}`);
  }

  // revisions, with commit message and author
  if (scenario.revision) {
    const { applied, message, author } = scenario.revision;
    await until(
      'the applied revision, its message and its author are shown',
      async () => {
        const t = await text('#revision');
        const by = !author || t.includes(author);
        return t.includes(applied.slice(0, 12)) && t.includes(message) && by;
      },
      async () => `  revision card: ${await text('#revision')}`
    );
    log(`revision ${applied.slice(0, 12)} "${message}" by ${author} shown`);
  }

  // per-provider health: one row per provider of the pipeline, none failing
  if (scenario.providers) {
    let rows = {};
    await until(
      'the provider health rows are shown',
      async () => {
        rows = await providerRows();
        return Object.entries(scenario.providers).every(([p, n]) => {
          const r = rows[p];
          return r && r.resources === n && r.calls > 0 && r.state !== 'bad';
        });
      },
      async () =>
        `  want resources: ${JSON.stringify(scenario.providers)}\n  shown: ${JSON.stringify(rows)}`
    );
    const health = Object.entries(rows).map(
      ([p, r]) => `${p} ${r.state} (${r.resources} resources, ${r.calls} calls, ${r.errors} errors)`
    );
    log(`provider health: ${health.join('; ')}`);
  }

  // the counters agree with the graph
  const counts = {};
  for (const s of Object.values(scenario.resources)) counts[s] = (counts[s] || 0) + 1;
  for (const [s, n] of Object.entries(counts)) {
    await until(
      `the ${s} counter says ${n}`,
      async () => (await text(`#count-${s} b`)) === String(n),
      async () => `  counter: ${await text(`#count-${s}`)}`
    );
  }

  // runs are listed; opening one shows per-action results
  await until(
    'recent runs are listed',
    async () => (await page.locator('#runs-table tr.run').count()) > 0,
    async () => `  runs panel: ${await text('#runs')}`
  );
  await page.locator('#runs-table tr.run').first().click();
  await until(
    'an opened run shows its per-action results',
    async () => (await page.locator('#runs tr.run-detail').count()) === 1,
    async () => `  runs panel: ${await text('#runs')}`
  );
  if (scenario.run) {
    const { actions, summary } = scenario.run;
    await until(
      `the newest run lists ${actions} per-action results and its plan`,
      async () =>
        (await page.locator('#runs tr.run-detail tbody tr[data-address]').count()) === actions &&
        (await text('#runs tr.run-detail .plan .summary')) === summary,
      async () =>
        `  actions: ${await page.locator('#runs tr.run-detail tbody tr[data-address]').count()}\n` +
        `  plan summary: ${await text('#runs tr.run-detail .plan .summary')}`
    );
    log(`the newest run: ${actions} per-action results; its plan says "${summary}"`);
  }
  log('runs listed; a run opens with its per-action results');
  await page.locator('#runs-table tr.run').first().click();

  // events filtered by a clicked resource
  if (scenario.select) {
    const address = scenario.select;
    await page.locator(`#phases .node[data-address="${address}"]`).click();
    await until(
      `the detail panel and the events follow ${address}`,
      async () => {
        if ((await text('#detail-address')) !== address) return false;
        const rows = await page.$$eval('#events-table tbody tr', (trs) =>
          trs.map((tr) => tr.getAttribute('data-address'))
        );
        return rows.length > 0 && rows.every((a) => a === address);
      },
      async () => `  detail: ${await text('#detail')}\n  events: ${await text('#events')}`
    );
    log(`clicking ${address} shows its details and only its events`);
    if (scenario.select_has_logs) {
      await until(
        `the log lines follow ${address}`,
        async () => {
          if (!(await text('#logs-note')).includes(address)) return false;
          const lines = await page.$$eval('#logs > div', (ds) => ds.map((d) => d.textContent));
          return lines.length > 0 && lines.every((l) => l.includes(`[${address}]`));
        },
        async () => `  logs: ${await text('#logs-note')}\n${await text('#logs')}`
      );
      log(`and only its log lines (${await page.locator('#logs > div').count()})`);
    }
    await page.locator('#events-filter button').click();
  }

  // a change behind Tapestry's back shows up as drift
  if (scenario.drift) {
    const { address, command } = scenario.drift;
    const r = spawnSync(command[0], command.slice(1), { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`drift command ${JSON.stringify(command)} failed`);
    log(`changed ${address} behind Tapestry's back`);
    await expectResources({ ...scenario.resources, [address]: 'drifted' }, 'after the drift');
    await page.locator(`#phases .node[data-address="${address}"]`).click();
    await until(
      'the detail panel lists the drifted fields',
      async () => {
        const t = await text('#detail');
        return /Drift/.test(t) && (!scenario.drift.live || t.includes(scenario.drift.live));
      },
      async () => `  detail: ${await text('#detail')}`
    );
    log(`${address} shown as drifted, with its live value, the others unchanged`);
  }

  if (loads !== 1)
    throw new Error(`the page was loaded ${loads} times: it must refresh without reloading`);
  if (writes.length) throw new Error(`the page is read-only, yet it sent: ${writes.join(', ')}`);
  if (outside.length) throw new Error(`the page requested outside the controller: ${outside.join(', ')}`);
  if (pageErrors.length) throw new Error(`errors in the page:\n  ${pageErrors.join('\n  ')}`);
}

let rc = 0;
try {
  await main();
  log('all checks passed');
} catch (e) {
  console.error(`dashboard: FAILED: ${e.message}`);
  rc = 1;
}
try {
  if (page) {
    mkdirSync(dirname(shot), { recursive: true });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(300);
    await page.screenshot({ path: shot, fullPage: true });
    log(`screenshot: ${shot}`);
  }
} catch (e) {
  console.error(`dashboard: no screenshot: ${e.message}`);
  rc = 1;
}
if (browser) await browser.close();
rmSync(profile, { recursive: true, force: true });
process.exit(rc);
