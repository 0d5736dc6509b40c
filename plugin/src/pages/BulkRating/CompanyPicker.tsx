import React, { useCallback } from 'react';
import { Combobox, ComboboxOption, Field } from '@grafana/ui';
import { api } from '../../api/client';
import type { Company } from '@controlroom/contract';

interface Props {
  value: Company | null;
  onChange: (company: Company | null) => void;
}

const label = (c: Company) => `${c.name}${c.plan ? ` (${c.plan})` : ' (no plan)'}`;

/** The tenant whose plan the jobs count against; searched on the server, 50 at a time. */
export function CompanyPicker({ value, onChange }: Props) {
  const search = useCallback(async (input: string): Promise<Array<ComboboxOption<string> & { company: Company }>> => {
    const { companies } = await api<{ companies: Company[] }>('companies', { params: { search: input } });
    return companies.map((c) => ({ value: c.id, label: label(c), company: c }));
  }, []);

  return (
    <Field label="Company" description="Jobs are rated for, and counted against the plan of, this company">
      <Combobox<string>
        id="bulk-company"
        width={50}
        placeholder="Search companies"
        options={search}
        value={value ? { value: value.id, label: label(value) } : null}
        isClearable
        onChange={(option) =>
          onChange(option ? (option as ComboboxOption<string> & { company: Company }).company : null)
        }
      />
    </Field>
  );
}
