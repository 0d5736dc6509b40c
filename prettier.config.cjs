// The service uses the Grafana app's Prettier settings (plugin/.config/.prettierrc.js): one style in the repository.
module.exports = require('./plugin/.config/.prettierrc.js');
