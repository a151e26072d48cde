package declared

import (
	"slices"
	"strings"
)

// kafkaOperation maps an operation as broker authorizer logs name it to the name
// ClientIntents give it; "" when ClientIntents have no name for it.
func kafkaOperation(op string) string {
	switch strings.ToLower(op) {
	case "read":
		return "consume"
	case "write":
		return "produce"
	case "all", "consume", "produce", "create", "alter", "delete", "describe":
		return strings.ToLower(op)
	case "clusteraction":
		return "ClusterAction"
	case "describeconfigs":
		return "DescribeConfigs"
	case "alterconfigs":
		return "AlterConfigs"
	case "idempotentwrite":
		return "IdempotentWrite"
	}
	return ""
}

// kafkaOperations maps ops, sorted and without repeats; unmapped lists those
// ClientIntents cannot name.
func kafkaOperations(ops []string) (mapped, unmapped []string) {
	for _, op := range ops {
		m := kafkaOperation(op)
		switch {
		case m == "":
			unmapped = append(unmapped, op)
		case !slices.Contains(mapped, m):
			mapped = append(mapped, m)
		}
	}
	slices.Sort(mapped)
	return mapped, unmapped
}
