"""Converting a database made by the original TypeScript package: the run, the plan, the
catalog reader, the original's shapes, the data-fixing rules and the report."""
