// Types a message into banter-chat's page in headless Chromium and waits for the reply.
// usage: node page.mjs http://127.0.0.1:PORT/
import { chromium } from 'playwright-core';

const url = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.fill('#text', 'where are you?');
  await page.click('#send');
  await page.waitForFunction(() => {
    const bots = document.querySelectorAll('.msg.bot, .msg.err');
    return bots.length > 0 && bots[bots.length - 1].textContent !== '…';
  }, null, { timeout: 30000 });
  const err = await page.$('.msg.err');
  if (err) throw new Error('the page showed ' + (await err.textContent()));
  const user = await page.textContent('.msg.user');
  const reply = await page.textContent('.msg.bot');
  if (user !== 'where are you?') throw new Error(`user message shown as ${JSON.stringify(user)}`);
  if (!reply || reply === '…') throw new Error('no reply shown');
  console.log(JSON.stringify({ user, reply }));
} finally {
  await browser.close();
}
