package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// The OpenAPI 3.1 document is built from the route table: every registered route is
// an operation, its body types are walked by reflection into JSON Schemas, and its
// access rule becomes its security requirement. A test checks the document against
// the app's real routes.

var (
	timeType    = reflect.TypeFor[time.Time]()
	rawJSONType = reflect.TypeFor[json.RawMessage]()
	paramRE     = regexp.MustCompile(`:([A-Za-z_][A-Za-z0-9_]*)`)
	nameRE      = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)
)

// openAPIPath turns a Fiber pattern under /v1 into an OpenAPI path.
func openAPIPath(p string) string { return "/v1" + paramRE.ReplaceAllString(p, "{$1}") }

func (a *api) openAPI() []byte {
	schemas := map[string]any{}
	paths := map[string]map[string]any{}
	problem := map[string]any{"description": "Problem details (RFC 9457)",
		"content": map[string]any{ProblemContentType: map[string]any{"schema": schemaOf(reflect.TypeFor[Problem](), schemas)}}}
	for _, r := range a.routes {
		p := openAPIPath(r.path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		op := map[string]any{
			"operationId": operationID(r),
			"summary":     r.summary,
			"tags":        []string{r.tag},
			"x-gatehouse-access": map[string]any{
				"public": r.access.public, "roles": r.access.roles, "scope": r.access.scope, "facility_scoped": r.access.scoped,
			},
		}
		if r.access.public {
			op["security"] = []any{map[string]any{}, map[string]any{"bearer": []string{}}}
		} else {
			sec := []any{map[string]any{"bearer": []string{}}}
			if r.access.scope != "" {
				sec = append(sec, map[string]any{"apiKey": []string{}})
			}
			op["security"] = sec
		}
		var params []any
		for _, m := range paramRE.FindAllStringSubmatch(r.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range r.query {
			params = append(params, map[string]any{"name": q.name, "in": "query", "required": q.required,
				"description": q.description, "schema": map[string]any{"type": q.typ}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if r.request != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(r.request), schemas)}}}
		}
		status := r.status
		if status == 0 {
			status = http.StatusOK
		}
		ok := map[string]any{"description": http.StatusText(status)}
		if r.response != nil {
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(r.response), schemas)}}
		}
		responses := map[string]any{itoa(status): ok, "default": problem}
		op["responses"] = responses
		paths[p][strings.ToLower(r.method)] = op
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Gatehouse cloud API", "version": "1",
			"description": "The fleet's REST API: accounts, facilities, live availability, sessions, gate commands. Errors are RFC 9457 problem details; lists are cursor-paginated (?limit=, ?cursor=, next_cursor)."},
		"servers": []any{map[string]any{"url": "/"}},
		"paths":   paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
				"apiKey": map[string]any{"type": "apiKey", "in": "header", "name": HeaderAPIKey},
			},
		},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err) // maps of strings: cannot fail
	}
	return b
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// operationID is method + path, camel-cased: "getFacilitiesFacilityAvailability".
func operationID(r *route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(r.method))
	for _, part := range strings.FieldsFunc(r.path, func(c rune) bool { return c == '/' || c == ':' || c == '-' || c == '_' || c == '.' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// schemaOf returns the JSON Schema of t, adding named structs to schemas and
// referring to them.
func schemaOf(t reflect.Type, schemas map[string]any) map[string]any {
	nullable := false
	for t.Kind() == reflect.Pointer {
		t, nullable = t.Elem(), true
	}
	s := baseSchema(t, schemas)
	if nullable {
		if typ, ok := s["type"].(string); ok {
			s["type"] = []string{typ, "null"}
		}
	}
	return s
}

func baseSchema(t reflect.Type, schemas map[string]any) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawJSONType:
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), schemas)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), schemas)}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := nameRE.ReplaceAllString(t.Name(), "_")
		if name == "" {
			return structSchema(t, schemas)
		}
		if _, done := schemas[name]; !done {
			schemas[name] = map[string]any{} // taken before the fields are walked, so a recursive type refers to itself
			schemas[name] = structSchema(t, schemas)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func structSchema(t reflect.Type, schemas map[string]any) map[string]any {
	props := map[string]any{}
	var required []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			if sub, ok := structSchema(f.Type, schemas)["properties"].(map[string]any); ok {
				for k, v := range sub {
					props[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type, schemas)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && f.Type.Kind() != reflect.Pointer {
			required = append(required, name)
		}
	}
	s := map[string]any{"type": "object", "properties": props}
	if required != nil {
		s["required"] = required
	}
	return s
}
