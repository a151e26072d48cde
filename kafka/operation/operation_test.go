package operation

import (
	"strings"
	"testing"
)

// Every AclOperation a broker logs, as ZooKeeper-era (AclAuthorizer) and KRaft
// (StandardAuthorizer) brokers spell it, and as earlier versions of this project
// stored it (KRaft's, lower-cased), reaches its ClientIntents name.
func TestOtterizeNamesEveryLoggedOperation(t *testing.T) {
	for _, tc := range []struct{ zk, kraft, want string }{
		{"All", "ALL", "all"},
		{"Read", "READ", "consume"},
		{"Write", "WRITE", "produce"},
		{"Create", "CREATE", "create"},
		{"Delete", "DELETE", "delete"},
		{"Alter", "ALTER", "alter"},
		{"Describe", "DESCRIBE", "describe"},
		{"ClusterAction", "CLUSTER_ACTION", "ClusterAction"},
		{"DescribeConfigs", "DESCRIBE_CONFIGS", "DescribeConfigs"},
		{"AlterConfigs", "ALTER_CONFIGS", "AlterConfigs"},
		{"IdempotentWrite", "IDEMPOTENT_WRITE", "IdempotentWrite"},
	} {
		for _, op := range []string{tc.zk, tc.kraft, Canonical(tc.kraft), strings.ToLower(tc.kraft)} {
			if got := Otterize(op); got != tc.want {
				t.Errorf("Otterize(%q) = %q, want %q", op, got, tc.want)
			}
		}
	}
	for _, op := range []string{"", "Any", "UNKNOWN", "read write"} {
		if got := Otterize(op); got != "" {
			t.Errorf("Otterize(%q) = %q, want nothing", op, got)
		}
	}
}
