// Package dealer decides which data to copy where: it collects copy
// proposals from plugins (user copy requests, enforcer rules, popularity,
// the balancer, the undertaker, group reassignment), merges them by
// priority, picks a destination for each under the site, cycle and request
// limits, and turns the accepted copies into projected (incomplete)
// replicas in the inventory plus block transfers for the file-operation
// daemon.
//
// Planning is pure: Dealer.Plan reads an inventory snapshot and the inputs
// fetched from the narrow source interfaces (RequestSource, AccessSource,
// ProtectionSource) and returns a Plan in which every proposal either
// became a Copy or carries a named Reason. The same snapshot, inputs and
// seed give the same plan. Dealer.Apply re-checks the plan against the
// current inventory and executes it; History records cycles, proposals and
// decisions for the CLI and the REST API. docs/dealer.md is the operator
// guide.
package dealer
