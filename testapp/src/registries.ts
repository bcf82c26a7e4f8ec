// Grafana core fills these registries at boot (public/app/core/components/OptionsUI);
// panels cannot load without them. Our editors render nothing: there is no panel editor.
import {
  FieldColorModeId,
  FieldConfigPropertyItem,
  StandardEditorsRegistryItem,
  ThresholdsMode,
  booleanOverrideProcessor,
  dataLinksOverrideProcessor,
  displayNameOverrideProcessor,
  identityOverrideProcessor,
  numberOverrideProcessor,
  standardEditorsRegistry,
  standardFieldConfigEditorRegistry,
  stringOverrideProcessor,
  thresholdsOverrideProcessor,
  unitOverrideProcessor,
  valueMappingsOverrideProcessor,
} from '@grafana/data';

const NoEditor = () => null;

const EDITOR_IDS = [
  'number', 'text', 'strings', 'select', 'multi-select', 'radio', 'boolean', 'unit', 'color',
  'thresholds', 'mappings', 'links', 'actions', 'slider', 'field-name', 'dashboard-uid',
  'timezone', 'stats-picker', 'fieldColor', 'color-scheme', 'interval', 'datetime',
];

function item(
  id: string,
  process: (value: any, context: any, settings?: any) => any,
  shouldApply: FieldConfigPropertyItem['shouldApply'],
  defaultValue?: unknown
): FieldConfigPropertyItem {
  return {
    id,
    path: id,
    name: id,
    editor: NoEditor,
    override: NoEditor,
    process,
    shouldApply,
    defaultValue,
    settings: {},
    category: ['Standard options'],
  } as FieldConfigPropertyItem;
}

const always = () => true;
const numeric = (field: { type: string }) => field.type === 'number';

export function initRegistries() {
  standardEditorsRegistry.setInit(
    () => EDITOR_IDS.map((id) => ({ id, name: id, editor: NoEditor })) as StandardEditorsRegistryItem[]
  );
  standardFieldConfigEditorRegistry.setInit(() => [
    item('unit', unitOverrideProcessor, numeric),
    item('min', numberOverrideProcessor, numeric),
    item('max', numberOverrideProcessor, numeric),
    item('fieldMinMax', booleanOverrideProcessor, numeric),
    item('decimals', numberOverrideProcessor, numeric),
    item('displayName', displayNameOverrideProcessor, always),
    item('noValue', stringOverrideProcessor, always),
    item('color', identityOverrideProcessor, always, { mode: FieldColorModeId.PaletteClassic }),
    item('thresholds', thresholdsOverrideProcessor, always, {
      mode: ThresholdsMode.Absolute,
      steps: [
        { value: -Infinity, color: 'green' },
        { value: 80, color: 'red' },
      ],
    }),
    item('mappings', valueMappingsOverrideProcessor, always, []),
    item('links', dataLinksOverrideProcessor, always, []),
    item('filterable', booleanOverrideProcessor, always),
  ]);
}
