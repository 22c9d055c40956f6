// Package detox deletes data to keep sites within their partition quotas,
// following Dynamo's Detox: a policy file (internal/policy) says which sites
// are targets (On), when deletion starts (When) and stops (Until), and, line
// by line, which replicas are protected, deleted or candidates.
//
// The package is split the way policy code should be (docs/detox.md):
//
//   - Sources.Gather asks the attribute producers (locks, accesses, flags,
//     enforcer protection) what a policy needs: the only part of a cycle
//     that talks to databases and services.
//   - PlanWith is pure: from an inventory snapshot and those Inputs it
//     returns a Plan with a decision, the deciding policy line and a Reason
//     for every block replica of the partition at the target sites; the
//     same arguments give the same plan. PlanCycle is Gather then PlanWith.
//   - Apply is the one destructive choke point: caps, re-checks against the
//     current inventory, pending deletion in one inventory write, file
//     deletions handed to a DeletionQueue. It honours dry runs.
//   - Runner ties both to the cycle history (History) for the CLI, the
//     scheduler and the REST layer (Routes).
//
// Safety rules hold whatever the policy says: every deletion passes
// inventory.DeletionGuard, so the last copy of a block (no other complete
// copy at a ready or waitroom site, of any storage type) is only deleted
// by a Delete decision in a partition configured to allow it, and then
// marked LAST COPY; locked block replicas are never deleted; a site stops
// at the replica that makes Until hold.
package detox
