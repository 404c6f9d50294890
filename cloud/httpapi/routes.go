package httpapi

// routeTable returns every /v1 route, by resource. Each resource's file declares its
// routes; add a resource here.
func (a *api) routeTable() []*route {
	var rs []*route
	for _, group := range [][]*route{
		a.statusRoutes(),
	} {
		rs = append(rs, group...)
	}
	return rs
}
