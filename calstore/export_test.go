package calstore

// SchemaVersion is the bbolt file's layout version this package writes.
const SchemaVersion = schemaVersion
