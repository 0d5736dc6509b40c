// force timezone to UTC to allow tests to work regardless of local timezone
process.env.TZ = 'UTC';

const scaffold = require('./.config/jest.config');
const { grafanaESModules, nodeModulesToTransform } = require('./.config/jest/utils');
const [swcPattern, swcOptions] = Object.entries(scaffold.transform)[0];

module.exports = {
  ...scaffold,
  // d3-color ships only an .mjs build; the scaffold's transform covers .js/.ts but not .mjs.
  transform: { [swcPattern.replace('sx?$', 'sx?$|^.+\\.mjs$')]: swcOptions },
  // The browser tests (src/**/*.browser.ts) run in Chromium from the root test runner, not in jsdom.
  // Grafana 13's @grafana/data pulls in @react-hookz/web and @ver0/deep-equal, which ship only ES modules.
  transformIgnorePatterns: [nodeModulesToTransform([...grafanaESModules, '@react-hookz', '@ver0'])],
  testPathIgnorePatterns: ['/node_modules/', '\\.browser\\.ts$'],
};
