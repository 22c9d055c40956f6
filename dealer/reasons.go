package dealer

// Reason says why a proposal was not turned into a copy, or why a request
// was rejected. Reasons are stable strings: they are stored in history and
// filtered on in the REST API.
type Reason string

// Rejection reasons. The checks run in the order listed in docs/dealer.md
// (cheap and global first), and a proposal gets the reason of the first
// check it fails.
const (
	ReasonUnknownItem      Reason = "unknown item"           // dataset or block not in the inventory
	ReasonDatasetStatus    Reason = "dataset status"         // not valid or production
	ReasonDuplicate        Reason = "duplicate proposal"     // the same item and destination already planned this cycle
	ReasonCycleVolume      Reason = "over cycle volume"      // Config.MaxCycleVolume
	ReasonPluginVolume     Reason = "over plugin volume"     // the plugin's max_cycle_volume
	ReasonRequestVolume    Reason = "over request volume"    // Config.MaxRequestVolume
	ReasonNoSource         Reason = "no source"              // some block has no complete replica (at an allowed source)
	ReasonReplicaExists    Reason = "replica exists"         // the destination already holds (or will hold) the item
	ReasonNotTarget        Reason = "destination not target" // the named destination is not ready, not matched or above its thresholds
	ReasonPlacement        Reason = "placement rule"         // a placement rule forbids the destination
	ReasonDestinationFull  Reason = "destination full"       // the copy would pass 100% of quota or the site's cycle volume
	ReasonNoDestination    Reason = "no destination"         // no eligible site can take the item
	ReasonUnknownGroup     Reason = "unknown group"          // the request's group does not exist
	ReasonNoTargetSites    Reason = "no target sites"        // the request's sites match no site
	ReasonRequestTooLarge  Reason = "request too large"      // over plugins.requests.max_request_size
	ReasonNoItems          Reason = "no items"               // the request lists nothing valid
	ReasonStale            Reason = "stale plan"             // Apply found the inventory changed under the plan
	ReasonNothingToReplace Reason = "nothing to reassign"    // group reassignment found no replica with a from-group
)
