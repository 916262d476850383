// Peer of intake's alb and dynamodb-stream functions in Go, standard library only: its own
// Runtime API loop (net/http), its own AWS Signature Version 4 and its own DynamoDB (JSON) and
// SNS (query) requests, since the AWS SDK for Go is not in the standard library. Same work on
// the same payloads as intake's functions; PEER_HANDLER picks the handler (alb or stream).
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

var client = &http.Client{Timeout: 30 * time.Second}

func main() {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	var handle func([]byte) ([]byte, error)
	switch os.Getenv("PEER_HANDLER") {
	case "alb":
		handle = alb
	case "stream":
		cfg = loadConfig()
		handle = stream
	default:
		fmt.Fprintln(os.Stderr, "PEER_HANDLER must be alb or stream")
		os.Exit(1)
	}
	for {
		resp, err := client.Get(api + "next")
		if err != nil {
			fmt.Fprintln(os.Stderr, "next:", err)
			os.Exit(1)
		}
		event, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		out, err := handle(event)
		target := api + id + "/response"
		if err != nil {
			target = api + id + "/error"
			out, _ = json.Marshal(map[string]string{"errorType": "Error", "errorMessage": err.Error()})
		}
		r, err := client.Post(target, "application/json", bytes.NewReader(out))
		if err != nil {
			fmt.Fprintln(os.Stderr, "response:", err)
			os.Exit(1)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
}

// ---- alb: GET /health ----

func alb(event []byte) ([]byte, error) {
	var req struct {
		HTTPMethod string `json:"httpMethod"`
		Path       string `json:"path"`
	}
	if err := json.Unmarshal(event, &req); err != nil {
		return nil, err
	}
	status, body := 404, `{"error":"not_found"}`
	if req.HTTPMethod == "GET" && req.Path == "/health" {
		status, body = 200, `{"status":"ok"}`
	}
	return json.Marshal(map[string]any{
		"statusCode": status, "statusDescription": fmt.Sprintf("%d %s", status, http.StatusText(status)),
		"headers": map[string]string{"content-type": "application/json"}, "isBase64Encoded": false, "body": body,
	})
}

// ---- AWS: configuration and Signature Version 4 ----

type config struct{ endpoint, region, key, secret, token, table, topic string }

var cfg config

func loadConfig() config {
	return config{os.Getenv("AWS_ENDPOINT_URL"), os.Getenv("AWS_REGION"), os.Getenv("AWS_ACCESS_KEY_ID"),
		os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"), os.Getenv("TABLE_NAME"), os.Getenv("TOPIC_ARN")}
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// call signs and sends a POST to the service's endpoint and returns the response body.
func call(service string, headers map[string]string, body []byte) ([]byte, error) {
	endpoint := cfg.endpoint
	if endpoint == "" {
		endpoint = fmt.Sprintf("https://%s.%s.amazonaws.com", service, cfg.region)
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	amzDate, day := now.Format("20060102T150405Z"), now.Format("20060102")
	headers["host"] = u.Host
	headers["x-amz-date"] = amzDate
	if cfg.token != "" {
		headers["x-amz-security-token"] = cfg.token
	}
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var canonical strings.Builder
	for _, k := range names {
		canonical.WriteString(k + ":" + strings.TrimSpace(headers[k]) + "\n")
	}
	signed := strings.Join(names, ";")
	path := u.Path
	if path == "" {
		path = "/"
	}
	request := "POST\n" + path + "\n\n" + canonical.String() + "\n" + signed + "\n" + sha256Hex(body)
	scope := day + "/" + cfg.region + "/" + service + "/aws4_request"
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + sha256Hex([]byte(request))
	k := hmacSHA256([]byte("AWS4"+cfg.secret), day)
	k = hmacSHA256(k, cfg.region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "aws4_request")
	signature := hex.EncodeToString(hmacSHA256(k, toSign))

	req, err := http.NewRequest("POST", u.Scheme+"://"+u.Host+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range headers {
		if k != "host" {
			req.Header.Set(k, v)
		}
	}
	req.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", cfg.key, scope, signed, signature))
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: HTTP %d: %s", service, resp.StatusCode, out)
	}
	return out, nil
}

// ---- stream: the dynamodb-stream function's work ----

type AV struct {
	S    *string       `json:"S,omitempty"`
	N    *string       `json:"N,omitempty"`
	BOOL *bool         `json:"BOOL,omitempty"`
	NULL *bool         `json:"NULL,omitempty"`
	L    []AV          `json:"L,omitempty"`
	M    map[string]AV `json:"M,omitempty"`
}

func (a AV) value() any {
	switch {
	case a.S != nil:
		return *a.S
	case a.N != nil:
		return json.Number(*a.N)
	case a.BOOL != nil:
		return *a.BOOL
	case a.L != nil:
		out := make([]any, len(a.L))
		for i, x := range a.L {
			out[i] = x.value()
		}
		return out
	case a.M != nil:
		out := make(map[string]any, len(a.M))
		for k, x := range a.M {
			out[k] = x.value()
		}
		return out
	}
	return nil
}

type Record struct {
	EventID  string `json:"eventID"`
	Dynamodb struct {
		ApproximateCreationDateTime float64       `json:"ApproximateCreationDateTime"`
		Keys                        map[string]AV `json:"Keys"`
		NewImage                    map[string]AV `json:"NewImage"`
		OldImage                    map[string]AV `json:"OldImage"`
		SequenceNumber              string        `json:"SequenceNumber"`
	} `json:"dynamodb"`
}

type Document struct {
	Fields                      map[string]any // the document as events carry it
	Owner, Name, Status, Sha256 string
	Size                        int64
	Tags                        string // canonical form, for comparison
}

var statuses = map[string]string{"received": "", "accepted": "document.accepted", "duplicate": "document.duplicate",
	"rejected": "document.rejected", "deleted": "document.deleted"}
var tableKeys = map[string]bool{"pk": true, "sk": true, "gsi1pk": true, "gsi1sk": true, "entity": true, "ttl": true}

func isDocument(item map[string]AV) bool {
	if e, ok := item["entity"]; ok && e.S != nil && *e.S == "document" {
		return true
	}
	pk, ok := item["pk"]
	return ok && pk.S != nil && strings.HasPrefix(*pk.S, "DOC#")
}

func decode(image map[string]AV) (*Document, error) {
	if len(image) == 0 {
		return nil, nil
	}
	d := &Document{Fields: make(map[string]any, len(image))}
	for k, v := range image {
		if !tableKeys[k] {
			d.Fields[k] = v.value()
		}
	}
	for _, f := range []string{"id", "owner", "name", "status", "created_at", "updated_at", "version"} {
		if _, ok := d.Fields[f]; !ok {
			return nil, fmt.Errorf("missing %s", f)
		}
	}
	d.Owner, _ = d.Fields["owner"].(string)
	d.Name, _ = d.Fields["name"].(string)
	d.Status, _ = d.Fields["status"].(string)
	d.Sha256, _ = d.Fields["sha256"].(string)
	if _, ok := statuses[d.Status]; !ok {
		return nil, fmt.Errorf("unknown status %q", d.Status)
	}
	if n, ok := d.Fields["size"].(json.Number); ok {
		d.Size, _ = n.Int64()
	}
	tags, _ := json.Marshal(d.Fields["tags"])
	d.Tags = string(tags)
	return d, nil
}

func classify(old, new *Document) string {
	if new == nil {
		return ""
	}
	if old != nil && old.Status == new.Status {
		if old.Name != new.Name || old.Tags != new.Tags {
			return "document.updated"
		}
		return ""
	}
	return statuses[new.Status]
}

type delta struct {
	status      string
	docs, bytes int64
}

func statDeltas(old, new *Document) []delta {
	if old != nil && new != nil && old.Status == new.Status {
		if old.Size != new.Size {
			return []delta{{new.Status, 0, new.Size - old.Size}}
		}
		return nil
	}
	var out []delta
	if old != nil {
		out = append(out, delta{old.Status, -1, -old.Size})
	}
	if new != nil {
		out = append(out, delta{new.Status, 1, new.Size})
	}
	return out
}

func blobDelta(old, new *Document) (string, int64) {
	uses := func(d *Document) string {
		if d != nil && (d.Status == "accepted" || d.Status == "duplicate") {
			return d.Sha256
		}
		return ""
	}
	before, after := uses(old), uses(new)
	switch {
	case before == "" && after != "":
		return after, 1
	case before != "" && after == "":
		return before, -1
	}
	return "", 0
}

type statsChange struct {
	record, owner string
	deltas        []delta
	blob          string
	blobDelta     int64
}

func s(v string) map[string]string { return map[string]string{"S": v} }
func n(v int64) map[string]string  { return map[string]string{"N": strconv.FormatInt(v, 10)} }

func transact(changes []statsChange) error {
	expires := time.Now().Unix() + 7*24*3600
	items := make([]any, 0, 100)
	owners, ownerOrder := map[string]map[string][2]int64{}, []string{}
	blobs, blobOrder := map[string]int64{}, []string{}
	for _, c := range changes {
		items = append(items, map[string]any{"Put": map[string]any{"TableName": cfg.table,
			"Item":                map[string]any{"pk": s("APPLIED#" + c.record), "sk": s("APPLIED"), "entity": s("applied"), "ttl": n(expires)},
			"ConditionExpression": "attribute_not_exists(#pk)", "ExpressionAttributeNames": map[string]string{"#pk": "pk"}}})
		sums, ok := owners[c.owner]
		if !ok {
			sums = map[string][2]int64{}
			owners[c.owner] = sums
			ownerOrder = append(ownerOrder, c.owner)
		}
		for _, d := range c.deltas {
			v := sums[d.status]
			sums[d.status] = [2]int64{v[0] + d.docs, v[1] + d.bytes}
		}
		if c.blob != "" {
			if _, ok := blobs[c.blob]; !ok {
				blobOrder = append(blobOrder, c.blob)
			}
			blobs[c.blob] += c.blobDelta
		}
	}
	for _, owner := range ownerOrder {
		names, values := map[string]string{"#entity": "entity"}, map[string]any{":entity": s("stats")}
		var adds []string
		i := 0
		for status, v := range owners[owner] {
			if v == [2]int64{} {
				continue
			}
			names[fmt.Sprintf("#d%d", i)], names[fmt.Sprintf("#b%d", i)] = status+"_documents", status+"_bytes"
			values[fmt.Sprintf(":d%d", i)], values[fmt.Sprintf(":b%d", i)] = n(v[0]), n(v[1])
			adds = append(adds, fmt.Sprintf("#d%d :d%d, #b%d :b%d", i, i, i, i))
			i++
		}
		if len(adds) > 0 {
			items = append(items, map[string]any{"Update": map[string]any{"TableName": cfg.table,
				"Key":                      map[string]any{"pk": s("STATS#" + owner), "sk": s("STATS")},
				"UpdateExpression":         "ADD " + strings.Join(adds, ", ") + " SET #entity = :entity",
				"ExpressionAttributeNames": names, "ExpressionAttributeValues": values}})
		}
	}
	for _, sha := range blobOrder {
		if blobs[sha] != 0 {
			items = append(items, map[string]any{"Update": map[string]any{"TableName": cfg.table,
				"Key":                       map[string]any{"pk": s("BLOB#" + sha), "sk": s("BLOB")},
				"UpdateExpression":          "ADD #refs :d SET #entity = :entity",
				"ExpressionAttributeNames":  map[string]string{"#refs": "refs", "#entity": "entity"},
				"ExpressionAttributeValues": map[string]any{":d": n(blobs[sha]), ":entity": s("blob")}}})
		}
	}
	body, err := json.Marshal(map[string]any{"TransactItems": items})
	if err != nil {
		return err
	}
	_, err = call("dynamodb", map[string]string{"content-type": "application/x-amz-json-1.0",
		"x-amz-target": "DynamoDB_20120810.TransactWriteItems"}, body)
	return err
}

type publishBatchResponse struct {
	Failed []struct {
		ID string `xml:"Id"`
	} `xml:"PublishBatchResult>Failed>member"`
}

func publish(events []map[string]any) ([]int, error) {
	form := url.Values{"Action": {"PublishBatch"}, "Version": {"2010-03-31"}, "TopicArn": {cfg.topic}}
	for i, e := range events {
		p := fmt.Sprintf("PublishBatchRequestEntries.member.%d.", i+1)
		msg, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		form.Set(p+"Id", strconv.Itoa(i))
		form.Set(p+"Message", string(msg))
		for j, attr := range []string{"type", "owner"} {
			a := fmt.Sprintf("%sMessageAttributes.entry.%d.", p, j+1)
			form.Set(a+"Name", attr)
			form.Set(a+"Value.DataType", "String")
			form.Set(a+"Value.StringValue", e[attr].(string))
		}
	}
	out, err := call("sns", map[string]string{"content-type": "application/x-www-form-urlencoded; charset=utf-8"}, []byte(form.Encode()))
	if err != nil {
		return nil, err
	}
	var resp publishBatchResponse
	if err := xml.Unmarshal(out, &resp); err != nil {
		return nil, err
	}
	var failed []int
	for _, f := range resp.Failed {
		i, err := strconv.Atoi(f.ID)
		if err != nil {
			return nil, errors.New("bad id in PublishBatch answer")
		}
		failed = append(failed, i)
	}
	return failed, nil
}

type change struct {
	index    int
	old, new *Document
	at       float64
}

func stream(event []byte) ([]byte, error) {
	var batch struct {
		Records []Record `json:"Records"`
	}
	if err := json.Unmarshal(event, &batch); err != nil {
		return nil, err
	}
	records := batch.Records
	partition := func(i int) string {
		if pk, ok := records[i].Dynamodb.Keys["pk"]; ok && pk.S != nil {
			return *pk.S
		}
		return ""
	}
	firstFailure := map[string]int{}
	fail := func(i int) {
		if f, ok := firstFailure[partition(i)]; !ok || i < f {
			firstFailure[partition(i)] = i
		}
	}
	var changes []change
	var stats []statsChange
	var statsIndex []int
	for i, r := range records {
		d := r.Dynamodb
		if !isDocument(d.Keys) && !isDocument(d.NewImage) && !isDocument(d.OldImage) {
			continue
		}
		old, errOld := decode(d.OldImage)
		new, errNew := decode(d.NewImage)
		if errOld != nil || errNew != nil {
			fmt.Fprintf(os.Stderr, "{\"level\":\"ERROR\",\"message\":\"poison record\",\"record\":%q}\n", d.SequenceNumber)
			fail(i)
			continue
		}
		changes = append(changes, change{i, old, new, d.ApproximateCreationDateTime})
		owner := ""
		if new != nil {
			owner = new.Owner
		} else {
			owner = old.Owner
		}
		deltas := statDeltas(old, new)
		sha, bd := blobDelta(old, new)
		if len(deltas) > 0 || sha != "" {
			stats = append(stats, statsChange{r.EventID, owner, deltas, sha, bd})
			statsIndex = append(statsIndex, i)
		}
	}
	for start := 0; start < len(stats); {
		owners, blobs, end := map[string]bool{}, map[string]bool{}, start
		for ; end < len(stats); end++ {
			c := stats[end]
			count := end - start + 1 + len(owners) + len(blobs)
			if !owners[c.owner] {
				count++
			}
			if c.blob != "" && !blobs[c.blob] {
				count++
			}
			if count > 100 {
				break
			}
			owners[c.owner] = true
			if c.blob != "" {
				blobs[c.blob] = true
			}
		}
		if end == start {
			end = start + 1
		}
		if err := transact(stats[start:end]); err != nil {
			fmt.Fprintf(os.Stderr, "{\"level\":\"ERROR\",\"message\":\"statistics not updated\",\"error\":%q}\n", err.Error())
			for _, i := range statsIndex[start:end] {
				fail(i)
			}
		}
		start = end
	}
	type pending struct {
		index int
		event map[string]any
	}
	var queue []pending
	for _, c := range changes {
		kind := classify(c.old, c.new)
		if _, failed := firstFailure[partition(c.index)]; kind == "" || failed {
			continue
		}
		var previous any
		if c.old != nil {
			previous = c.old.Status
		}
		queue = append(queue, pending{c.index, map[string]any{"version": 1, "id": records[c.index].EventID, "type": kind,
			"owner": c.new.Owner, "occurred_at": time.Unix(int64(c.at), 0).UTC().Format(time.RFC3339),
			"document": c.new.Fields, "previous_status": previous}})
	}
	for len(queue) > 0 {
		var batch []pending
		documents := map[string]bool{}
		for len(queue) > 0 && len(batch) < 10 && !documents[partition(queue[0].index)] {
			documents[partition(queue[0].index)] = true
			batch = append(batch, queue[0])
			queue = queue[1:]
		}
		events := make([]map[string]any, len(batch))
		for i, p := range batch {
			events[i] = p.event
		}
		failed, err := publish(events)
		if err != nil {
			fmt.Fprintf(os.Stderr, "{\"level\":\"ERROR\",\"message\":\"events not published\",\"error\":%q}\n", err.Error())
			for _, p := range batch {
				fail(p.index)
			}
		}
		for _, i := range failed {
			fail(batch[i].index)
		}
	}
	failures := []map[string]string{}
	for i, r := range records {
		if f, ok := firstFailure[partition(i)]; ok && f <= i {
			failures = append(failures, map[string]string{"itemIdentifier": r.Dynamodb.SequenceNumber})
		}
	}
	return json.Marshal(map[string]any{"batchItemFailures": failures})
}
