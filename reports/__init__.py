"""HTML reports: the scorecard of one run (reports.render) and the shared templates."""
