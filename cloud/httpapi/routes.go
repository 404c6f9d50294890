package httpapi

// routeTable returns every /v1 route, by resource. Each resource's file declares its
// routes; add a resource here.
func (a *api) routeTable() []*route {
	var rs []*route
	for _, group := range [][]*route{
		a.statusRoutes(),
		a.facilityRoutes(),
		a.availabilityRoutes(),
		a.fleetRoutes(),
		a.exportRoutes(),
		a.authRoutes(),
		a.userRoutes(),
		a.sessionRoutes(),
		a.commandRoutes(),
		a.vehicleRoutes(),
		a.reservationRoutes(),
		a.quoteRoutes(),
		a.paymentRoutes(),
	} {
		rs = append(rs, group...)
	}
	return rs
}
