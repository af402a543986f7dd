package caldav

// ETag is etag, for the tests that compare a response's ETag with the
// stored data.
var ETag = etag
