// SPDX-License-Identifier: MIT
// Loads statusd's dashboard in headless Chromium (Debian's, through
// playwright-core with executablePath) while a fake worker moves a job,
// and checks what a person would see: the job's card, its progress bar
// moving, the final counts, the queues and workers tables, no script
// error.  Prints "ok NAME" / "FAIL NAME: why" lines; run.sh counts them.
// Usage: node dashboard.mjs URL JOB_ID SCREENSHOT READY_FILE
import { writeFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [url, jobId, shot, readyFile] = process.argv.slice(2);
let failed = 0;
const ok = (name) => console.log("ok " + name);
const fail = (name, why) => { failed++; console.log("FAIL " + name + ": " + why); };
const check = (name, cond, why) => (cond ? ok(name) : fail(name, why));

const browser = await chromium.launch({
  executablePath: process.env.CHROME,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 820 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  await page.goto(url, { waitUntil: "domcontentloaded" });
  const card = page.locator(`article.job[data-job-id="${jobId}"]`);
  await card.waitFor({ timeout: 15000 });
  ok("the dashboard lists the job");
  await page.locator("#live.on").waitFor({ timeout: 10000 }).then(
    () => ok("live updates connected"), (e) => fail("live updates connected", e.message));
  writeFileSync(readyFile, "ready\n"); // the fake worker starts now

  const seen = [];
  const t0 = Date.now();
  let done = false;
  while (Date.now() - t0 < 30000) {
    const v = Number(await card.locator(".bar").getAttribute("aria-valuenow"));
    if (!seen.length || seen[seen.length - 1] !== v) seen.push(v);
    const cls = (await card.getAttribute("class")) || "";
    if (v >= 100 && cls.includes("completed")) { done = true; break; }
    await page.waitForTimeout(50);
  }
  const increasing = seen.every((v, i) => i === 0 || v >= seen[i - 1]);
  check("the progress bar moves (" + seen.join(" → ") + ")",
    seen.length >= 4 && increasing && seen[0] < 50, "values " + JSON.stringify(seen));
  check("the bar reaches 100 % and the job shows completed", done, "last " + seen[seen.length - 1]);
  const width = await card.locator(".fill").evaluate((e) => e.style.width);
  check("the bar is drawn full", width === "100%", "width " + width);
  const count = async (k) => (await card.locator(`[data-count="${k}"] b`).textContent()).replace(/\D/g, "");
  const got = [await count("processed"), await count("updated"), await count("errors"), await count("not_found")];
  check("final counts shown", got.join(" ") === "200 180 20 0", "got " + got.join(" "));
  check("status badge", (await card.locator(".status").textContent()) === "completed", "badge");
  await page.waitForTimeout(4500); // one list refresh
  const qrow = page.locator('#queues tbody tr[data-queue="default"]');
  check("queues table", (await qrow.count()) === 1, "no row for queue default");
  const wtext = await page.locator("#workers tbody").textContent();
  check("workers table", wtext.includes("w1") && wtext.includes("host-a"), wtext.slice(0, 200));
  check("health pill", (await page.locator("#health").textContent()).includes("redis up"), "pill");
  const links = await card.locator(".links a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  check("links to errors and results", links.some((h) => h.includes("/errors")) && links.some((h) => h.includes("/results")), links.join(","));
  await page.screenshot({ path: shot, fullPage: true });
  ok("screenshot saved to " + shot);
  const narrow = await browser.newPage({ viewport: { width: 380, height: 800 } });
  await narrow.goto(url);
  await narrow.locator(`article.job[data-job-id="${jobId}"]`).waitFor({ timeout: 10000 });
  const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check("responsive: no sideways scrolling on a phone", overflow <= 1, "overflow " + overflow + "px");
  await narrow.screenshot({ path: shot.replace(/\.png$/, "-narrow.png"), fullPage: true });
  check("no script errors", errors.length === 0, errors.join(" | "));
} catch (e) {
  fail("browser session", e.stack || String(e));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
