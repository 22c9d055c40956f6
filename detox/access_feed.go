package detox

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// DecodeAccessFeed reads an access feed: a JSON array of accesses or one
// JSON object a line, unknown fields refused. Every record is validated;
// a record without a time is an error (the feed says when the data was
// read). Errors name the record by its position, counted from 1.
func DecodeAccessFeed(r io.Reader) ([]Access, error) {
	br := bufio.NewReader(r)
	first, err := br.Peek(1)
	for err == nil && (first[0] == ' ' || first[0] == '\n' || first[0] == '\t' || first[0] == '\r') {
		_, _ = br.ReadByte()
		first, err = br.Peek(1)
	}
	if err != nil {
		return nil, errors.New("empty feed")
	}
	dec := json.NewDecoder(br)
	dec.DisallowUnknownFields()
	var out []Access
	if first[0] == '[' {
		if err := dec.Decode(&out); err != nil {
			return nil, err
		}
	} else {
		for i := 1; ; i++ {
			var a Access
			if err := dec.Decode(&a); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			out = append(out, a)
		}
	}
	for i, a := range out {
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("record %d: %w", i+1, err)
		}
	}
	return out, nil
}
