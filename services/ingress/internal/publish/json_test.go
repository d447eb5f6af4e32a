package publish

import "encoding/json"

var jsonUnmarshal = json.Unmarshal
