package declared

import (
	"slices"

	"github.com/intent-mapper/intent-mapper/kafka/operation"
)

// kafkaOperation maps an operation as broker authorizer logs name it (any spelling,
// KRaft's included) to the name ClientIntents give it; "" when they have none.
func kafkaOperation(op string) string { return operation.Otterize(op) }

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
