// Opens a banter-eval HTML report in headless Chromium and checks what a reader sees: every plot drawn with
// bars, the summary table and the sample rows. Prints a JSON summary.
// usage: node report.mjs /path/to/report.html plot-id...
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';

const [file, ...plots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  const failed = [];
  page.on('requestfailed', r => failed.push(r.url()));
  await page.goto(pathToFileURL(file).href);
  const out = { title: await page.title(), plots: {}, failed };
  for (const id of plots) {
    const box = await page.$eval(`svg.plot[data-plot="${id}"]`, el => {
      const r = el.getBoundingClientRect();
      return { width: r.width, height: r.height, bars: el.querySelectorAll('rect').length,
               drawn: [...el.querySelectorAll('rect')].filter(b => b.getBBox().width > 0).length };
    }).catch(() => null);
    if (!box) throw new Error(`plot ${id} is missing`);
    if (box.width <= 0 || box.height <= 0 || box.drawn === 0) throw new Error(`plot ${id} shows nothing: ${JSON.stringify(box)}`);
    out.plots[id] = box;
  }
  out.sample_rows = await page.$$eval('table.samples tr', rows => rows.length - 1);
  out.text = (await page.textContent('body')).slice(0, 200);
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
}
