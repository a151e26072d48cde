// Package operation names Kafka ACL operations: one canonical form for what brokers
// log (ZooKeeper-era "DescribeConfigs", KRaft's "DESCRIBE_CONFIGS") and the name
// Otterize's ClientIntents give each.
package operation

import "strings"

// Canonical folds the ways brokers spell an operation into one: lower case, without
// underscores ("describeconfigs").
func Canonical(op string) string {
	return strings.ToLower(strings.ReplaceAll(op, "_", ""))
}

// ClientIntents' names for reading and writing.
const (
	consume = "consume"
	produce = "produce"
)

// otterize maps canonical operations to ClientIntents' KafkaOperation values. Every
// AclOperation a broker can log for a topic is here.
var otterize = map[string]string{
	"all":             "all",
	"read":            consume,
	"write":           produce,
	"create":          "create",
	"delete":          "delete",
	"alter":           "alter",
	"describe":        "describe",
	"clusteraction":   "ClusterAction",
	"describeconfigs": "DescribeConfigs",
	"alterconfigs":    "AlterConfigs",
	"idempotentwrite": "IdempotentWrite",
	// already in ClientIntents' words
	consume: consume,
	produce: produce,
}

// Otterize returns ClientIntents' name for an operation in any spelling, or "" for
// one ClientIntents cannot express.
func Otterize(op string) string {
	return otterize[Canonical(op)]
}
