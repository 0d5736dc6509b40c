import React from 'react';
import { Route, Routes } from 'react-router-dom';
import { AppRootProps } from '@grafana/data';
import { ROUTES } from '../../constants';

const BulkRatingPage = React.lazy(() => import('../../pages/BulkRating/BulkRatingPage'));
const FailoverPage = React.lazy(() => import('../../pages/Failover/FailoverPage'));
const ReleaseFreezePage = React.lazy(() => import('../../pages/ReleaseFreeze/ReleaseFreezePage'));
const PricingPage = React.lazy(() => import('../../pages/Pricing/PricingPage'));
const IncidentsPage = React.lazy(() => import('../../pages/Incidents/IncidentsPage'));

function App(_props: AppRootProps) {
  return (
    <Routes>
      <Route path={ROUTES.Failover} element={<FailoverPage />} />
      <Route path={ROUTES.ReleaseFreeze} element={<ReleaseFreezePage />} />
      <Route path={ROUTES.Pricing} element={<PricingPage />} />
      <Route path={ROUTES.Incidents} element={<IncidentsPage />} />
      <Route path="*" element={<BulkRatingPage />} />
    </Routes>
  );
}

export default App;
