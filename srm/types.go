package srm

import "time"

// Response types, marshalled with unqualified element names as SRM v2.2
// rpc/encoded clients expect. Optional fields are pointers or omitempty.

// TReturnStatus is a status with an optional explanation.
type TReturnStatus struct {
	StatusCode  string `xml:"statusCode"`
	Explanation string `xml:"explanation,omitempty"`
}

func rs(code StatusCode, expl string) TReturnStatus {
	return TReturnStatus{StatusCode: code.String(), Explanation: expl}
}

// TSURLReturnStatus is a per-SURL status.
type TSURLReturnStatus struct {
	SURL   string        `xml:"surl"`
	Status TReturnStatus `xml:"status"`
}

type arrayOfSURLStatus struct {
	Items []TSURLReturnStatus `xml:"statusArray"`
}

type returnOnly struct {
	ReturnStatus TReturnStatus `xml:"returnStatus"`
}

type surlStatuses struct {
	ReturnStatus TReturnStatus      `xml:"returnStatus"`
	Files        *arrayOfSURLStatus `xml:"arrayOfFileStatuses,omitempty"`
}

type extraInfo struct {
	Key   string `xml:"key"`
	Value string `xml:"value,omitempty"`
}

type pingResponse struct {
	VersionInfo string `xml:"versionInfo"`
	OtherInfo   struct {
		Items []extraInfo `xml:"extraInfoArray"`
	} `xml:"otherInfo"`
}

type protocolInfo struct {
	Protocol string `xml:"transferProtocol"`
}

type getTransferProtocolsResponse struct {
	ReturnStatus TReturnStatus `xml:"returnStatus"`
	ProtocolInfo struct {
		Items []protocolInfo `xml:"protocolArray"`
	} `xml:"protocolInfo"`
}

// xsdTime formats an xsd:dateTime in UTC.
func xsdTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

type retentionPolicyInfo struct {
	RetentionPolicy string `xml:"retentionPolicy"`
	AccessLatency   string `xml:"accessLatency,omitempty"`
}

type userPermission struct {
	UserID string `xml:"userID"`
	Mode   string `xml:"mode"`
}

type groupPermission struct {
	GroupID string `xml:"groupID"`
	Mode    string `xml:"mode"`
}

type pathDetail struct {
	Path                 string               `xml:"path"`
	Status               TReturnStatus        `xml:"status"`
	Size                 *int64               `xml:"size,omitempty"`
	CreatedAtTime        string               `xml:"createdAtTime,omitempty"`
	LastModificationTime string               `xml:"lastModificationTime,omitempty"`
	FileStorageType      string               `xml:"fileStorageType,omitempty"`
	RetentionPolicyInfo  *retentionPolicyInfo `xml:"retentionPolicyInfo,omitempty"`
	FileLocality         string               `xml:"fileLocality,omitempty"`
	SpaceTokens          *struct {
		Items []string `xml:"stringArray"`
	} `xml:"arrayOfSpaceTokens,omitempty"`
	Type            string           `xml:"type,omitempty"`
	LifetimeAssign  *int64           `xml:"lifetimeAssigned,omitempty"`
	LifetimeLeft    *int64           `xml:"lifetimeLeft,omitempty"`
	OwnerPermission *userPermission  `xml:"ownerPermission,omitempty"`
	GroupPermission *groupPermission `xml:"groupPermission,omitempty"`
	OtherPermission string           `xml:"otherPermission,omitempty"`
	CheckSumType    string           `xml:"checkSumType,omitempty"`
	CheckSumValue   string           `xml:"checkSumValue,omitempty"`
	SubPaths        *pathDetails     `xml:"arrayOfSubPaths,omitempty"`
}

type pathDetails struct {
	Items []*pathDetail `xml:"pathDetailArray"`
}

type lsResponse struct {
	ReturnStatus TReturnStatus `xml:"returnStatus"`
	RequestToken string        `xml:"requestToken,omitempty"`
	Details      *pathDetails  `xml:"details,omitempty"`
}

// permMode maps permission bits (0-7) to TPermissionMode.
func permMode(bits uint32) string {
	return [...]string{"NONE", "X", "W", "WX", "R", "RX", "RW", "RWX"}[bits&7]
}

// parsePermMode maps a TPermissionMode, or a digit, to bits.
func parsePermMode(s string) (uint32, bool) {
	for i, n := range [...]string{"NONE", "X", "W", "WX", "R", "RX", "RW", "RWX"} {
		if s == n {
			return uint32(i), true
		}
	}
	if len(s) == 1 && s[0] >= '0' && s[0] <= '7' {
		return uint32(s[0] - '0'), true
	}
	return 0, false
}

type getFileStatus struct {
	SourceSURL        string        `xml:"sourceSURL"`
	FileSize          *int64        `xml:"fileSize,omitempty"`
	Status            TReturnStatus `xml:"status"`
	EstimatedWaitTime *int64        `xml:"estimatedWaitTime,omitempty"`
	RemainingPinTime  *int64        `xml:"remainingPinTime,omitempty"`
	TransferURL       string        `xml:"transferURL,omitempty"`
}

type getResponse struct {
	ReturnStatus TReturnStatus `xml:"returnStatus"`
	RequestToken string        `xml:"requestToken,omitempty"`
	Files        *struct {
		Items []getFileStatus `xml:"statusArray"`
	} `xml:"arrayOfFileStatuses,omitempty"`
	RemainingTotalRequestTime *int64 `xml:"remainingTotalRequestTime,omitempty"`
}

type putFileStatus struct {
	SURL                 string        `xml:"SURL"`
	Status               TReturnStatus `xml:"status"`
	FileSize             *int64        `xml:"fileSize,omitempty"`
	EstimatedWaitTime    *int64        `xml:"estimatedWaitTime,omitempty"`
	RemainingPinLifetime *int64        `xml:"remainingPinLifetime,omitempty"`
	TransferURL          string        `xml:"transferURL,omitempty"`
}

type putResponse struct {
	ReturnStatus TReturnStatus `xml:"returnStatus"`
	RequestToken string        `xml:"requestToken,omitempty"`
	Files        *struct {
		Items []putFileStatus `xml:"statusArray"`
	} `xml:"arrayOfFileStatuses,omitempty"`
	RemainingTotalRequestTime *int64 `xml:"remainingTotalRequestTime,omitempty"`
}

type bolFileStatus struct {
	SourceSURL        string        `xml:"sourceSURL"`
	Status            TReturnStatus `xml:"status"`
	FileSize          *int64        `xml:"fileSize,omitempty"`
	EstimatedWaitTime *int64        `xml:"estimatedWaitTime,omitempty"`
	RemainingPinTime  *int64        `xml:"remainingPinTime,omitempty"`
}

type bolResponse struct {
	ReturnStatus TReturnStatus `xml:"returnStatus"`
	RequestToken string        `xml:"requestToken,omitempty"`
	Files        *struct {
		Items []bolFileStatus `xml:"statusArray"`
	} `xml:"arrayOfFileStatuses,omitempty"`
	RemainingTotalRequestTime *int64 `xml:"remainingTotalRequestTime,omitempty"`
}

type lifetimeStatus struct {
	SURL         string        `xml:"surl"`
	Status       TReturnStatus `xml:"status"`
	FileLifetime *int64        `xml:"fileLifetime,omitempty"`
	PinLifetime  *int64        `xml:"pinLifetime,omitempty"`
}

type extendResponse struct {
	ReturnStatus TReturnStatus `xml:"returnStatus"`
	Files        *struct {
		Items []lifetimeStatus `xml:"statusArray"`
	} `xml:"arrayOfFileStatuses,omitempty"`
}

type tokenReturn struct {
	RequestToken  string `xml:"requestToken"`
	CreatedAtTime string `xml:"createdAtTime,omitempty"`
}

type requestTokensResponse struct {
	ReturnStatus TReturnStatus `xml:"returnStatus"`
	Tokens       *struct {
		Items []tokenReturn `xml:"tokenArray"`
	} `xml:"arrayOfRequestTokens,omitempty"`
}

type requestSummary struct {
	RequestToken string        `xml:"requestToken"`
	Status       TReturnStatus `xml:"status"`
	RequestType  string        `xml:"requestType,omitempty"`
	Total        *int64        `xml:"totalNumFilesInRequest,omitempty"`
	Completed    *int64        `xml:"numOfCompletedFiles,omitempty"`
	Waiting      *int64        `xml:"numOfWaitingFiles,omitempty"`
	Failed       *int64        `xml:"numOfFailedFiles,omitempty"`
}

type requestSummaryResponse struct {
	ReturnStatus TReturnStatus `xml:"returnStatus"`
	Summaries    *struct {
		Items []requestSummary `xml:"summaryArray"`
	} `xml:"arrayOfRequestSummaries,omitempty"`
}

type surlPermissionReturn struct {
	SURL       string        `xml:"surl"`
	Status     TReturnStatus `xml:"status"`
	Permission string        `xml:"permission,omitempty"`
}

type checkPermissionResponse struct {
	ReturnStatus TReturnStatus `xml:"returnStatus"`
	Perms        *struct {
		Items []surlPermissionReturn `xml:"surlPermissionArray"`
	} `xml:"arrayOfPermissions,omitempty"`
}

type permissionReturn struct {
	SURL            string        `xml:"surl"`
	Status          TReturnStatus `xml:"status"`
	Owner           string        `xml:"owner,omitempty"`
	OwnerPermission string        `xml:"ownerPermission,omitempty"`
	OtherPermission string        `xml:"otherPermission,omitempty"`
}

type getPermissionResponse struct {
	ReturnStatus TReturnStatus `xml:"returnStatus"`
	Perms        *struct {
		Items []permissionReturn `xml:"permissionArray"`
	} `xml:"arrayOfPermissionReturns,omitempty"`
}

type spaceTokensResponse struct {
	ReturnStatus TReturnStatus `xml:"returnStatus"`
	Tokens       *struct {
		Items []string `xml:"stringArray"`
	} `xml:"arrayOfSpaceTokens,omitempty"`
}

type metaDataSpace struct {
	SpaceToken          string               `xml:"spaceToken"`
	Status              TReturnStatus        `xml:"status"`
	RetentionPolicyInfo *retentionPolicyInfo `xml:"retentionPolicyInfo,omitempty"`
	Owner               string               `xml:"owner,omitempty"`
	TotalSize           *int64               `xml:"totalSize,omitempty"`
	GuaranteedSize      *int64               `xml:"guaranteedSize,omitempty"`
	UnusedSize          *int64               `xml:"unusedSize,omitempty"`
	LifetimeAssigned    *int64               `xml:"lifetimeAssigned,omitempty"`
	LifetimeLeft        *int64               `xml:"lifetimeLeft,omitempty"`
}

type spaceMetaDataResponse struct {
	ReturnStatus TReturnStatus `xml:"returnStatus"`
	Spaces       *struct {
		Items []metaDataSpace `xml:"spaceDataArray"`
	} `xml:"arrayOfSpaceDetails,omitempty"`
}

func i64(v int64) *int64 { return &v }
