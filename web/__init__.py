"""The browser UI: static HTML, CSS and ES modules served by annotate.api.app. Talks to the HTTP API only."""
