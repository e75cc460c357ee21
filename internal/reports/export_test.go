package reports

// SetCSVBatch makes WriteCSV read n rows per query, so that tests cross
// batch boundaries with few rows.
func SetCSVBatch(s *Service, n int) { s.csvBatch = n }
