package controllers

import (
	"reflect"
	"testing"
	"time"
)

// TestDefaultsAreUsable: every interval the manager starts with is positive — a zero
// one panics a ticker, which only the binary (not the suite, which sets its own) hits.
func TestDefaultsAreUsable(t *testing.T) {
	o := DefaultDataPathOptions()
	v := reflect.ValueOf(o)
	for i := range v.NumField() {
		if d, ok := v.Field(i).Interface().(time.Duration); ok && d <= 0 {
			t.Errorf("%s defaults to %v", v.Type().Field(i).Name, d)
		}
	}
	if o.Merge.Step <= 0 || o.Merge.MaxPaths <= 0 || o.Resolve.TombstoneTTL <= 0 {
		t.Errorf("merge or resolve defaults unusable: %+v %+v", o.Merge, o.Resolve)
	}
}
