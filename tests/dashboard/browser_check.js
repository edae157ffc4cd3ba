// Opens the dashboard in headless Chromium (Debian's, driven by playwright-core from npm) and
// waits until it shows what the pipeline produced: a row per sensor, the alerts, the dead
// letter, the plugins; searching narrows the rows. Saves a screenshot. Exits non-zero on any
// miss. Usage: node browser_check.js URL SCREENSHOT SENSORS ALERTS
const { chromium } = require("playwright-core");

const [url, screenshot, sensors, alerts] = process.argv.slice(2);

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
                                          args: ["--no-sandbox", "--disable-gpu"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(url);
    const timeout = 30000;
    await page.waitForFunction((n) => document.querySelectorAll(".window-row").length >= n, Number(sensors), { timeout });
    await page.waitForFunction((n) => document.querySelectorAll("#alerts .alert").length >= n, Number(alerts), { timeout });
    await page.waitForFunction(() => [...document.querySelectorAll(".dlq-row")].some((r) => r.textContent.includes("not_json")), null, { timeout });
    await page.waitForFunction(() => document.querySelectorAll(".plugin-row").length >= 3, null, { timeout });
    await page.waitForFunction(() => !/–/.test(document.getElementById("consumed").textContent), null, { timeout });
    const alertText = await page.textContent("#alerts");
    if (!alertText.includes("temperature_out_of_range")) throw new Error(`alerts do not name the rule: ${alertText}`);
    await page.screenshot({ path: screenshot, fullPage: true });
    await page.fill("#search", "sensor_1");
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll(".window-row")];
      return rows.length > 0 && rows.every((r) => r.firstChild.textContent.includes("sensor_1"));
    }, null, { timeout });
    if (errors.length) throw new Error(`errors on the page: ${errors.join("; ")}`);
    console.log("dashboard ok; screenshot:", screenshot);
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
