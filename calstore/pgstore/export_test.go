package pgstore

// Migrations are the schema's migrations, for building an older database
// in tests.
var Migrations = migrations
